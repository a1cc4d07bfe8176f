(domain shop
  (id item-id)
  (aggregate item (key item-id) (state (stock u32 0) (name string ""))
    (invariant named (> stock name))))
