(domain 日本 (doc "é🐜") (id ü
