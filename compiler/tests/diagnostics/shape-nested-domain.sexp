(domain shop
  (domain inner))
