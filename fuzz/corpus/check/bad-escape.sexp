(domain x (doc "a \q b"))
