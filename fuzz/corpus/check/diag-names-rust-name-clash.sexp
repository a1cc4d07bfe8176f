(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (stock u32 0))
    (event restocked (qty u32))
    (command restock (params (qty u32)) (emit restocked qty))
    (on restocked (set stock (+ stock qty)))
    (event a1 (qty u32))
    (event a-1 (qty u32))
    (command c1 (params (qty u32)) (emit a1 qty) (emit a-1 qty))
    (on a1)
    (on a-1)))
