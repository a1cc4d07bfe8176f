;; The exchange: one order book per stock, limit orders matched by price-time priority. The matching loop is
;; an extern command (src/matching.rs); the book, the events and the rule that the book is never crossed are
;; declared here. docs/domains.md explains the model.
(domain exchange
  (doc "A stock exchange's matching engine: every order of a stock is processed in order by that stock's book.")

  (id stock-id (doc "A listed stock's symbol."))
  (id order-id (doc "An order, unique per book."))
  (id trader-id (doc "A trading member."))
  (type price (decimal 2) (doc "A price per share."))
  (type shares u64 (doc "A number of shares."))

  (enum side
    (buy (doc "A bid: buy at this price or lower."))
    (sell (doc "An ask: sell at this price or higher.")))
  (record slot
    (doc "A resting order's place in the book: by price, then by arrival.")
    (price price)
    (seq u64 (doc "The arrival number in this book, from 0.")))
  (record resting-order
    (doc "A limit order waiting in the book.")
    (trader trader-id)
    (side side)
    (price price)
    (open shares (doc "Shares not filled yet."))
    (seq u64))
  (record print
    (doc "One trade, as the tape shows it.")
    (price price)
    (qty shares))

  (aggregate order-book
    (doc "The book of one stock: resting bids and asks, in price-time priority.")
    (key stock-id)
    (state
      (halted bool false (doc "Trading is halted: no new orders; cancels still work."))
      (next-seq u64 0 (doc "The arrival number the next order gets."))
      (orders (map order-id resting-order) (doc "The resting orders."))
      (bids (map slot order-id) (doc "Resting buy orders by price and arrival: the best is the highest price, earliest first."))
      (asks (map slot order-id) (doc "Resting sell orders by price and arrival: the best is the lowest price, earliest first."))
      (last-price (optional price) (doc "The price of the last trade.")))

    (event order-accepted
      (doc "An order arrived and got its arrival number; the trades and the rest follow in the same command.")
      (order order-id) (trader trader-id) (side side) (price price) (qty shares) (seq u64))
    (event traded
      (doc "The incoming order (taker) traded with a resting one (maker), at the maker's price.")
      (maker order-id) (taker order-id) (buyer trader-id) (seller trader-id) (taker-side side)
      (price price) (qty shares))
    (event order-rested
      (doc "What was left of the incoming order went into the book.")
      (order order-id) (trader trader-id) (side side) (price price) (open shares) (seq u64))
    (event order-cancelled
      (doc "A resting order left the book.")
      (order order-id) (trader trader-id) (side side) (price price) (open shares))
    (event halted (doc "Trading was halted.") (reason string))
    (event resumed (doc "Trading resumed."))

    (command place-order
      (doc "A limit order: it trades with the best resting orders of the other side while their price is acceptable (each at the resting order's price, the earliest first at a price), and the rest waits in the book. Decided by `matching::place_order`.")
      (params (order order-id) (trader trader-id) (side side) (price price) (qty shares))
      (extern)
      (require (not halted) trading-halted "trading in this stock is halted")
      (require (> price 0) bad-price "the price must be positive")
      (require (> qty 0) bad-quantity "the quantity must be positive")
      (require (not (contains orders order)) duplicate-order "an order with this id is already in the book")
      (emits order-accepted traded order-rested)
      (rejects self-trade "the order would trade with the same trader's resting order"))

    (command cancel-order
      (doc "Take a resting order out of the book.")
      (params (order order-id) (trader trader-id))
      (require (contains orders order) unknown-order "the order is not in the book")
      (let ((o (unwrap-or (get orders order)
                          (make resting-order (trader "") (side 'buy) (price 0) (open 0) (seq 0)))))
        (require (= o.trader trader) not-owner "only the trader who placed the order can cancel it")
        (emit order-cancelled order trader (side o.side) (price o.price) (open o.open))))

    (command halt
      (params (reason string))
      (require (not halted) trading-halted "trading in this stock is halted")
      (emit halted reason))

    (command resume
      (require halted not-halted "trading in this stock is not halted")
      (emit resumed))

    (on order-accepted (set next-seq (+ seq 1)))
    (on traded
      (set last-price (some price))
      (let ((m (unwrap-or (get orders maker)
                          (make resting-order (trader "") (side 'buy) (price 0) (open 0) (seq 0))))
            (open (- m.open (min m.open qty)))
            (at (make slot (price m.price) (seq m.seq))))
        (if (= open 0)
          (set orders (remove orders maker))
          (set orders (put orders maker (make resting-order (trader m.trader) (side m.side) (price m.price) open (seq m.seq)))))
        (when (= open 0)
          (if (= m.side 'buy)
            (set bids (remove bids at))
            (set asks (remove asks at))))))
    (on order-rested
      (set orders (put orders order (make resting-order trader side price open seq)))
      (if (= side 'buy)
        (set bids (put bids (make slot price seq) order))
        (set asks (put asks (make slot price seq) order))))
    (on order-cancelled
      (let ((o (unwrap-or (get orders order)
                          (make resting-order (trader "") (side 'buy) (price 0) (open 0) (seq 0))))
            (at (make slot (price o.price) (seq o.seq))))
        (set orders (remove orders order))
        (if (= o.side 'buy)
          (set bids (remove bids at))
          (set asks (remove asks at)))))
    (on halted (set halted true))
    (on resumed (set halted false))

    (invariant never-crossed
      (doc "After every command the best bid is below the best ask: whatever could trade has traded.")
      (let ((bid (unwrap-or (max-key bids) (make slot (price 0) (seq 0))))
            (ask (unwrap-or (min-key asks) (make slot (price 0) (seq 0)))))
        (or (is-empty bids) (is-empty asks) (< bid.price ask.price))))
    (invariant book-indexes-every-order
      (doc "Every resting order is in exactly one side of the book.")
      (= (+ (count bids) (count asks)) (count orders))))

  (view tape
    (doc "Per stock: the trades, latest last.")
    (key stock-id)
    (column last-price (latest price))
    (column trades count)
    (column volume (sum u64))
    (column recent (list print 100) (doc "The last 100 trades, in the order they happened."))
    (column high (max price))
    (column low (min price))
    (on order-book/traded
      (last-price price) (trades) (volume qty) (recent (make print price qty)) (high price) (low price)))

  (view order-fills
    (doc "Per order: the shares filled as maker and as taker, and whether it was cancelled.")
    (key order-id)
    (column placed (sum u64))
    (column filled (sum u64))
    (column cancelled count)
    (on order-book/order-accepted (key order) (placed qty))
    (on order-book/traded (key maker) (filled qty))
    (on order-book/traded (key taker) (filled qty))
    (on order-book/order-cancelled (key order) (cancelled)))

  (view trader-positions
    (doc "Per trader: shares bought and sold, from the trades only.")
    (key trader-id)
    (column bought (sum u64))
    (column sold (sum u64))
    (column trades count)
    (on order-book/traded (key buyer) (bought qty) (trades))
    (on order-book/traded (key seller) (sold qty) (trades)))

  ;; Matching runs the extern function `matching::place_order` in these scenarios too.

  (scenario "an order into an empty book rests"
    (when (place-order (order "o-1") (trader "t-ann") (side 'buy) (price 100.00) (qty 10)))
    (then (order-accepted (order "o-1") (trader "t-ann") (side 'buy) (price 100.00) (qty 10) (seq 0))
          (order-rested (order "o-1") (trader "t-ann") (side 'buy) (price 100.00) (open 10) (seq 0))))

  (scenario "a buy that does not reach the best ask rests"
    (given (order-accepted (order "o-1") (trader "t-ann") (side 'sell) (price 101.00) (qty 10) (seq 0))
           (order-rested (order "o-1") (trader "t-ann") (side 'sell) (price 101.00) (open 10) (seq 0)))
    (when (place-order (order "o-2") (trader "t-bob") (side 'buy) (price 100.99) (qty 5)))
    (then (order-accepted (order "o-2") (trader "t-bob") (side 'buy) (price 100.99) (qty 5) (seq 1))
          (order-rested (order "o-2") (trader "t-bob") (side 'buy) (price 100.99) (open 5) (seq 1))))

  (scenario "a crossing buy trades at the resting ask's price"
    (given (order-accepted (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (qty 10) (seq 0))
           (order-rested (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (open 10) (seq 0)))
    (when (place-order (order "o-2") (trader "t-bob") (side 'buy) (price 102.00) (qty 4)))
    (then (order-accepted (order "o-2") (trader "t-bob") (side 'buy) (price 102.00) (qty 4) (seq 1))
          (traded (maker "o-1") (taker "o-2") (buyer "t-bob") (seller "t-ann") (taker-side 'buy) (price 100.00) (qty 4))))

  (scenario "at one price the earlier order fills first"
    (given (order-accepted (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (qty 3) (seq 0))
           (order-rested (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (open 3) (seq 0))
           (order-accepted (order "o-2") (trader "t-cat") (side 'sell) (price 100.00) (qty 3) (seq 1))
           (order-rested (order "o-2") (trader "t-cat") (side 'sell) (price 100.00) (open 3) (seq 1)))
    (when (place-order (order "o-3") (trader "t-bob") (side 'buy) (price 100.00) (qty 4)))
    (then (order-accepted (order "o-3") (trader "t-bob") (side 'buy) (price 100.00) (qty 4) (seq 2))
          (traded (maker "o-1") (taker "o-3") (buyer "t-bob") (seller "t-ann") (taker-side 'buy) (price 100.00) (qty 3))
          (traded (maker "o-2") (taker "o-3") (buyer "t-bob") (seller "t-cat") (taker-side 'buy) (price 100.00) (qty 1))))

  (scenario "a sell sweeps the bids from the highest price down and rests the rest"
    (given (order-accepted (order "o-1") (trader "t-ann") (side 'buy) (price 99.00) (qty 5) (seq 0))
           (order-rested (order "o-1") (trader "t-ann") (side 'buy) (price 99.00) (open 5) (seq 0))
           (order-accepted (order "o-2") (trader "t-cat") (side 'buy) (price 100.00) (qty 2) (seq 1))
           (order-rested (order "o-2") (trader "t-cat") (side 'buy) (price 100.00) (open 2) (seq 1))
           (order-accepted (order "o-3") (trader "t-dan") (side 'buy) (price 98.00) (qty 5) (seq 2))
           (order-rested (order "o-3") (trader "t-dan") (side 'buy) (price 98.00) (open 5) (seq 2)))
    (when (place-order (order "o-4") (trader "t-bob") (side 'sell) (price 99.00) (qty 10)))
    (then (order-accepted (order "o-4") (trader "t-bob") (side 'sell) (price 99.00) (qty 10) (seq 3))
          (traded (maker "o-2") (taker "o-4") (buyer "t-cat") (seller "t-bob") (taker-side 'sell) (price 100.00) (qty 2))
          (traded (maker "o-1") (taker "o-4") (buyer "t-ann") (seller "t-bob") (taker-side 'sell) (price 99.00) (qty 5))
          (order-rested (order "o-4") (trader "t-bob") (side 'sell) (price 99.00) (open 3) (seq 3))))

  (scenario "an order that would trade with its own trader is rejected"
    (given (order-accepted (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (qty 10) (seq 0))
           (order-rested (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (open 10) (seq 0)))
    (when (place-order (order "o-2") (trader "t-ann") (side 'buy) (price 100.00) (qty 1)))
    (then (rejected self-trade)))

  (scenario "an order id is used once per book"
    (given (order-accepted (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (qty 10) (seq 0))
           (order-rested (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (open 10) (seq 0)))
    (when (place-order (order "o-1") (trader "t-bob") (side 'buy) (price 90.00) (qty 1)))
    (then (rejected duplicate-order)))

  (scenario "a price must be positive"
    (when (place-order (order "o-1") (trader "t-ann") (side 'buy) (price 0) (qty 1)))
    (then (rejected bad-price)))

  (scenario "a quantity must be positive"
    (when (place-order (order "o-1") (trader "t-ann") (side 'buy) (price 10.00) (qty 0)))
    (then (rejected bad-quantity)))

  (scenario "a halted book takes no order"
    (given (halted (reason "news pending")))
    (when (place-order (order "o-1") (trader "t-ann") (side 'buy) (price 10.00) (qty 1)))
    (then (rejected trading-halted)))

  (scenario "a resting order is cancelled by its trader"
    (given (order-accepted (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (qty 10) (seq 0))
           (order-rested (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (open 10) (seq 0)))
    (when (cancel-order (order "o-1") (trader "t-ann")))
    (then (order-cancelled (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (open 10))))

  (scenario "a partly filled order is cancelled with what is left"
    (given (order-accepted (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (qty 10) (seq 0))
           (order-rested (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (open 10) (seq 0))
           (order-accepted (order "o-2") (trader "t-bob") (side 'buy) (price 100.00) (qty 4) (seq 1))
           (traded (maker "o-1") (taker "o-2") (buyer "t-bob") (seller "t-ann") (taker-side 'buy) (price 100.00) (qty 4)))
    (when (cancel-order (order "o-1") (trader "t-ann")))
    (then (order-cancelled (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (open 6))))

  (scenario "a filled order cannot be cancelled"
    (given (order-accepted (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (qty 4) (seq 0))
           (order-rested (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (open 4) (seq 0))
           (order-accepted (order "o-2") (trader "t-bob") (side 'buy) (price 100.00) (qty 4) (seq 1))
           (traded (maker "o-1") (taker "o-2") (buyer "t-bob") (seller "t-ann") (taker-side 'buy) (price 100.00) (qty 4)))
    (when (cancel-order (order "o-1") (trader "t-ann")))
    (then (rejected unknown-order)))

  (scenario "only the owner cancels an order"
    (given (order-accepted (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (qty 10) (seq 0))
           (order-rested (order "o-1") (trader "t-ann") (side 'sell) (price 100.00) (open 10) (seq 0)))
    (when (cancel-order (order "o-1") (trader "t-bob")))
    (then (rejected not-owner)))

  (scenario "a crossed book refuses commands that leave it crossed"
    (doc "Rests that never went through matching (a bad import) crossed the book; only a command that uncrosses it is accepted.")
    (given (order-rested (order "o-1") (trader "t-ann") (side 'buy) (price 101.00) (open 1) (seq 0))
           (order-rested (order "o-2") (trader "t-bob") (side 'sell) (price 100.00) (open 1) (seq 1))
           (order-rested (order "o-3") (trader "t-cat") (side 'sell) (price 105.00) (open 1) (seq 2)))
    (when (cancel-order (order "o-3") (trader "t-cat")))
    (then (rejected never-crossed)))

  (scenario "cancelling the crossing order uncrosses the book"
    (given (order-rested (order "o-1") (trader "t-ann") (side 'buy) (price 101.00) (open 1) (seq 0))
           (order-rested (order "o-2") (trader "t-bob") (side 'sell) (price 100.00) (open 1) (seq 1)))
    (when (cancel-order (order "o-2") (trader "t-bob")))
    (then (order-cancelled (order "o-2") (trader "t-bob") (side 'sell) (price 100.00) (open 1))))

  (scenario "trading is halted"
    (when (halt (reason "volatility")))
    (then (halted (reason "volatility"))))

  (scenario "a halted book is halted once"
    (given (halted (reason "volatility")))
    (when (halt (reason "again")))
    (then (rejected trading-halted)))

  (scenario "trading resumes"
    (given (halted (reason "volatility")))
    (when resume)
    (then resumed))

  (scenario "a trading book does not resume"
    (when resume)
    (then (rejected not-halted))))
