(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (note (optional string)))
    (event noted (text string))
    (command note (params (text string)) (emit noted text))
    (on noted (set note text))))
