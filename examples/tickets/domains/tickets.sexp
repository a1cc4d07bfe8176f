;; Ticket sales for concerts: a concert never sells more seats than the hall has, and the price of a
;; ticket comes from a pricing function written in Rust.
(domain tickets
  (doc "Concerts selling seats, priced by a Rust function.")
  (type money (decimal 2))
  (id concert-id)
  (id order-id)

  (aggregate concert
    (doc "One concert in one hall.")
    (key concert-id)
    (state
      (capacity u32 0)
      (sold u32 0)
      (revenue money 0)
      (on-sale bool false))
    (event scheduled (capacity u32))
    (event sold (order order-id) (seats u32) (price money))
    (event refunded (order order-id) (seats u32) (price money))
    (command schedule
      (params (capacity u32))
      (require (not on-sale) already-scheduled "the concert is already on sale")
      (require (> capacity 0) empty-hall "a hall needs at least one seat")
      (emit scheduled capacity))
    (command buy
      (doc "Sells seats at the price the pricing function quotes.")
      (params (order order-id) (seats u32))
      (extern)
      (require on-sale not-on-sale "the concert is not on sale")
      (require (> seats 0) no-seats "an order needs at least one seat")
      (emits sold)
      (rejects price-unavailable "no price can be quoted right now"))
    (command refund
      (params (order order-id) (seats u32) (price money))
      (require (>= sold seats) too-many-seats "cannot refund more seats than were sold")
      (emit refunded order seats price))
    (on scheduled
      (set capacity capacity)
      (set on-sale true))
    (on sold
      (set sold (+ sold seats))
      (set revenue (+ revenue price)))
    (on refunded
      (set sold (- sold seats))
      (set revenue (- revenue price)))
    (invariant not-oversold
      (doc "A concert never sells more seats than the hall has.")
      (<= sold capacity)))

  (view sales
    (doc "Per concert: orders, seats and money.")
    (key concert-id)
    (column orders count)
    (column seats (sum u32))
    (column revenue (sum money))
    (on concert/sold (orders) (seats seats) (revenue price)))

  (scenario "a sold-out concert refuses more buyers"
    (given (scheduled (capacity 2)) (sold (order "o-1") (seats 2) (price 90.00)))
    (when (refund (order "o-1") (seats 3) (price 1.00)))
    (then (rejected too-many-seats))))
