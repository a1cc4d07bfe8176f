(domain é (doc "日本")) 🐜)
