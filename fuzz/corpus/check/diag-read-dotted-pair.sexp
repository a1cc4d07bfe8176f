(domain shop
  (id . item-id))
