(domain shop
  (doc "one")
  (doc "two"))
