;; Misspelt declarations (a state field, an event, a variant): every use of the intended name is unknown,
;; and each is reported once, at its first use, with the count of the others.
(domain shop
  (id item-id)
  (enum status (activ) (retired))
  (aggregate item
    (key item-id)
    (state (stok u32 0) (status status 'active))
    (event restock (qty u32))
    (command restock (params (qty u32))
      (require (= status 'active) retired "retired")
      (require (< stock 1000) full "full")
      (emit restocked qty))
    (command take (params (qty u32))
      (require (= status 'active) retired "retired")
      (require (>= stock qty) empty "empty")
      (emit restocked qty))
    (on restocked (set stock (+ stock qty)))))
