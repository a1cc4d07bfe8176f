(domain shop
  (type money (decimal 2))
  (id item-id)
  (aggregate item (key item-id) (state (price money 1.005))))
