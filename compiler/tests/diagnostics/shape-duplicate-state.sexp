(domain shop
  (id item-id)
  (aggregate item (key item-id) (state (a u32 0)) (state (b u32 0))))
