;; The only state field has an unknown type: `state.stock` is still not reported, though the state is empty.
(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (stock u23 0))
    (event restocked (qty u32))
    (command restock (params (qty u32)) (require (< state.stock 10) full "full") (emit restocked qty))
    (on restocked (set stock (+ stock qty)))))
