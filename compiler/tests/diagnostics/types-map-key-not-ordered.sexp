(domain shop
  (id item-id)
  (aggregate item (key item-id) (state (bins (map (list u32) u32)))))
