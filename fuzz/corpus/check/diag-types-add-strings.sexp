(domain shop
  (id item-id)
  (aggregate item (key item-id) (state (name string ""))
    (invariant named (= (+ name "x") "x"))))
