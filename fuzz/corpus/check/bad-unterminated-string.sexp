(domain x (doc "never closed
