(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (stock u32 0))
    (event restocked (qty u32))
    (command restock (params (qty u32)) (emit restocked qty))
    (on restocked (set stock (+ stock qty)))
    (command take (params (qty u32)) (emit ordered qty)))
  (id order-id)
  (aggregate order (key order-id) (event ordered (qty u32)) (command place (params (qty u32)) (emit ordered qty)) (on ordered)))
