(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (stock u32 0))
    (event restocked (qty u32))
    (command restock (params (qty u32)) (emit restocked qty))
    (on restocked (set stock (+ stock qty))))
  (scenario "restock" (when (restock (qty 1))) (then (restocked (qty 1))))
  (scenario "restock" (when (restock (qty 2))) (then (restocked (qty 2)))))
