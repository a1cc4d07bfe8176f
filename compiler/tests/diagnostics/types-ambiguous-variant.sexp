(domain shop
  (id item-id)
  (enum color red green)
  (enum light red amber)
  (aggregate item (key item-id) (state (stock u32 0))
    (invariant odd (= 'red 'red))))
