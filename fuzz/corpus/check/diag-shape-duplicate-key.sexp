(domain shop
  (id item-id)
  (aggregate item (key item-id) (key string)))
