(domain shop
  (type money (decimal 2))
  (id item-id)
  (aggregate item (key item-id) (state (price money 0) (rate money 0))
    (invariant cheap (< (* price rate) 100))))
