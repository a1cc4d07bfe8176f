(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (stock u32 0))
    (event restocked (qty u32))
    (command restock (params (qty u32)) (emit restocked qty))
    (on restocked (set stock (+ stock qty))))
  (process refill (on item/restocked (send item id restok qty))))
