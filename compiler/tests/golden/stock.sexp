;; A relaxed invariant with a reaction, a process across aggregates, and a view.
(domain stock
  (id sku)
  (id order-id)
  (aggregate item
    (key sku)
    (state
      (on-hand i32 0)
      (backorder-quota i32 5))
    (event received (qty i32))
    (event reserved (order order-id) (qty i32))
    (event back-ordered (short i32))
    (command receive
      (params (qty i32))
      (require (> qty 0) non-positive "the quantity must be positive")
      (emit received qty))
    (command reserve
      (params (order order-id) (qty i32))
      (emit reserved order qty))
    (on received (set on-hand (+ on-hand qty)))
    (on reserved (set on-hand (- on-hand qty)))
    (on back-ordered)
    (invariant in-stock
      (doc "Never reserve more than is on hand, except within the back-order quota.")
      (>= on-hand 0)
      (policy (relaxed
                (tolerance backorder-quota)
                (on-violation (emit back-ordered (short (- 0 on-hand))))))))
  (aggregate order
    (key order-id)
    (state (lines u32 0))
    (event line-added (item sku) (qty i32))
    (event line-refused (item sku))
    (command add-line
      (params (item sku) (qty i32))
      (emit line-added item qty))
    (command refuse-line
      (params (item sku))
      (emit line-refused item))
    (on line-added (set lines (+ lines 1)))
    (on line-refused (set lines (- lines (min lines 1)))))
  (process reservation
    (on order/line-added
      (send item item reserve (order id) qty
        (on-rejected (send order id refuse-line item)))))
  (view reservations
    (key sku)
    (column count count)
    (column reserved (sum i32))
    (column last-order (latest order-id))
    (on item/reserved (count) (reserved qty) (last-order order)))
  (scenario "a reservation within the quota is back-ordered"
    (given (received (qty 2)))
    (when (reserve (order "o-1") (qty 4)))
    (then (reserved (order "o-1") (qty 4)) (back-ordered (short 2))))
  (scenario "a reservation beyond the quota is refused"
    (given (received (qty 2)))
    (when (reserve (order "o-1") (qty 8)))
    (then (rejected in-stock))))
