(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (stock u32 #x10) (level i32 .5))))
