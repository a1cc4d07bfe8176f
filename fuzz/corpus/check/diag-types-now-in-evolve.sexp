(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (last timestamp 0))
    (event touched)
    (command touch (emit touched))
    (on touched (set last (now)))))
