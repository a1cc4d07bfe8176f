(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (levels (map item-id u32)))
    (invariant capped (contains levels))))
