(domain shop
  (id item-id)
  (aggregate item (key item-id) (state (stock u23 0))))
