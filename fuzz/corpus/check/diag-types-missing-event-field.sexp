(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (stock u32 0))
    (event restocked (qty u32))
    (command restock (params (qty u32)) (emit restocked qty))
    (on restocked (set stock (+ stock qty)))
    (event moved (qty u32) (to item-id))
    (command move (params (qty u32)) (emit moved qty))
    (on moved)))
