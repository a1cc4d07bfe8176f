(domain shop
  (id item-id)
  (enum item-id a b))
