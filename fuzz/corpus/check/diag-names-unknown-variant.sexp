(domain shop
  (id item-id)
  (enum color red green)
  (aggregate item (key item-id) (state (color color 'blue))))
