(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (stock u32 0))
    (event restocked (qty u32))
    (command restock (params (qty u32)) (emit restocked qty))
    (on restocked (set stock (+ stock qty)))
    (event taken (qty u32))
    (command take (params (qty u32)) (emit taken qty))
    (on taken (set stock (- stock qty)))))
