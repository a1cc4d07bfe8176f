(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (note (optional string)))
    (invariant noted (is-some none))))
