(domain shop
  (type a b)
  (type b a))
