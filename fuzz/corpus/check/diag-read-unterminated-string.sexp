(domain shop
  (doc "a shop that never ends)
