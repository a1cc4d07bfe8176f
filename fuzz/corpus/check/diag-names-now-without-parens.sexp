(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (last timestamp 0))
    (event touched (at timestamp))
    (command touch (emit touched (at now)))
    (on touched (set last at))))
