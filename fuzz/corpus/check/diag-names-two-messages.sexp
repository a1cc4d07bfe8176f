(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (stock u32 0))
    (event restocked (qty u32))
    (command restock (params (qty u32)) (emit restocked qty))
    (on restocked (set stock (+ stock qty)))
    (command take (params (qty u32))
      (require (> qty 0) bad-qty "the quantity must be positive")
      (require (< qty 100) bad-qty "the quantity is too large")
      (emit restocked qty))))
