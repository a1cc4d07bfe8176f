(domain x (doc "ü") #é🐜)
