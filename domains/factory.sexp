;; The automated factory: warehouse stock per SKU, orders of several items with reservations, picking and
;; shipping, assembly jobs that consume materials on machines, and the losses a real warehouse has.
;; docs/domains.md explains the model.
(domain factory
  (doc "An automated factory: orders are picked from the warehouse or assembled from materials, then shipped.")

  (id sku (doc "A stock-keeping unit: a product or a material, 3 to 40 characters."))
  (id order-id (doc "A customer order, 13 to 47 characters."))
  (id job-id (doc "An assembly job."))
  (id machine-id (doc "A machine of an assembly line."))

  (enum availability
    (doc "How quickly the SKU can be had when the warehouse runs out.")
    (rare (doc "Scarce or custom: promising a unit that is not on hand breaks a promise, so it is never done."))
    (back-orderable (doc "Re-supplied within hours: a few units may be promised ahead of the stock.")))
  (enum supply-source
    (delivery (doc "A supplier's delivery."))
    (assembly (doc "Built in this factory by an assembly job."))
    (returned (doc "Picked for an order that no longer wants it, and put back.")))
  (enum loss
    (broken (doc "Broken, by a machine or in handling."))
    (lost (doc "Gone: misplaced, stolen, eaten by rodents."))
    (expired (doc "Past its shelf life.")))
  (enum order-status
    (open (doc "The customer is adding items."))
    (placed (doc "Submitted: the items are reserved and being picked."))
    (packed (doc "Every item is picked."))
    (shipped (doc "Handed to the carrier."))
    (cancelled (doc "Cancelled; its reservations are released.")))
  (enum job-status
    (new (doc "Not planned yet."))
    (planned (doc "Materials are being issued to it."))
    (running (doc "On its machine."))
    (done (doc "The products are in the warehouse."))
    (aborted (doc "Stopped; the materials issued to it are scrapped.")))
  (enum machine-status
    (idle (doc "Free for a job."))
    (busy (doc "Running a job."))
    (broken (doc "Out of order until repaired.")))

  (aggregate stock-item
    (doc "The warehouse stock of one SKU: what is on the shelves and what is promised to orders.")
    (key sku)
    (state
      (registered bool false)
      (availability availability 'rare)
      (back-order-tolerance u32 0 (doc "How many units may be promised beyond the stock, when back-orderable."))
      (on-hand u32 0 (doc "Units physically in the warehouse."))
      (reserved u32 0 (doc "Units promised to orders and not picked yet."))
      (reservations (map order-id u32) (doc "The promised units, per order.")))

    (event registered
      (doc "The SKU is stocked here.")
      (availability availability) (back-order-tolerance u32))
    (event reclassified
      (doc "The SKU's availability changed, e.g. a supplier now delivers it within hours.")
      (availability availability) (back-order-tolerance u32))
    (event received (doc "Units arrived on the shelves.") (qty u32) (source supply-source))
    (event reserved (doc "Units were promised to an order.") (order order-id) (qty u32))
    (event released (doc "An order's promise was withdrawn.") (order order-id) (qty u32))
    (event picked
      (doc "Units left the shelves for an order; `from-reservation` of them had been promised to it.")
      (order order-id) (qty u32) (from-reservation u32))
    (event consumed (doc "Units were issued to an assembly job as material.") (job job-id) (qty u32))
    (event written-off (doc "Units were lost or broken.") (qty u32) (loss loss))
    (event back-ordered
      (doc "More is promised than is on hand: the shortfall must be re-supplied.")
      (short u32))

    (command register
      (params (availability availability) (back-order-tolerance u32))
      (require (not registered) already-registered "the SKU is already registered")
      (emit registered availability back-order-tolerance))

    (command reclassify
      (params (availability availability) (back-order-tolerance u32))
      (require registered unknown-sku "the SKU is not registered")
      (emit reclassified availability back-order-tolerance)
      (policy not-oversold (relaxed (tolerance reserved))))

    (command receive
      (doc "Put units on the shelves. Like releasing, reclassifying and returning units, it never makes promises worse, so it is accepted even when a loss left the SKU oversold.")
      (params (qty u32) (source supply-source))
      (require registered unknown-sku "the SKU is not registered")
      (require (> qty 0) no-quantity "the quantity must be positive")
      (emit received qty source)
      (policy not-oversold (relaxed (tolerance reserved))))

    (command reserve
      (doc "Promise units to an order. Never beyond the stock for rare items; back-orderable ones may go beyond by their tolerance.")
      (params (order order-id) (qty u32))
      (require registered unknown-sku "the SKU is not registered")
      (require (> qty 0) no-quantity "the quantity must be positive")
      (emit reserved order qty))

    (command release
      (doc "Withdraw an order's promise, all of it.")
      (params (order order-id))
      (require (contains reservations order) no-reservation "the order has no reservation of this SKU")
      (emit released order (qty (get reservations order 0)))
      (policy not-oversold (relaxed (tolerance reserved))))

    (command pick
      (doc "Take units off the shelves for an order. Picking more than the order reserved takes units promised to others (over-picking), so it follows the same policy as reserving.")
      (params (order order-id) (qty u32))
      (require registered unknown-sku "the SKU is not registered")
      (require (> qty 0) no-quantity "the quantity must be positive")
      (require (>= on-hand qty) not-on-shelf "there are not that many units on the shelves")
      (emit picked order qty (from-reservation (min qty (get reservations order 0)))))

    (command return-to-shelf
      (doc "Compensation: units picked for an order that refused them go back on the shelves.")
      (params (order order-id) (qty u32))
      (require (> qty 0) no-quantity "the quantity must be positive")
      (emit received qty (source 'returned))
      (policy not-oversold (relaxed (tolerance reserved))))

    (command consume
      (doc "Issue units to an assembly job as material. Materials promised to orders are not taken: this is strict for every SKU.")
      (params (job job-id) (qty u32))
      (require registered unknown-sku "the SKU is not registered")
      (require (> qty 0) no-quantity "the quantity must be positive")
      (require (>= on-hand qty) not-on-shelf "there are not that many units on the shelves")
      (emit consumed job qty)
      (policy not-oversold strict))

    (command write-off
      (doc "Record a loss. A loss is a fact, so it is always accepted; when it leaves promises uncovered, the shortfall is back-ordered.")
      (params (qty u32) (loss loss))
      (require (> qty 0) no-quantity "the quantity must be positive")
      (require (>= on-hand qty) more-than-on-hand "only units on hand can be written off")
      (emit written-off qty loss)
      (policy not-oversold
        (relaxed
          (tolerance reserved)
          (on-violation (emit back-ordered (short (- reserved (min reserved on-hand))))))))

    (on registered
      (set registered true)
      (set availability availability)
      (set back-order-tolerance back-order-tolerance))
    (on reclassified
      (set availability availability)
      (set back-order-tolerance back-order-tolerance))
    (on received (set on-hand (+ on-hand qty)))
    (on reserved
      (set reserved (+ reserved qty))
      (set reservations (update reservations order (promised 0) (+ promised qty))))
    (on released
      (set reserved (- reserved (min reserved qty)))
      (set reservations (remove reservations order)))
    (on picked
      (set on-hand (- on-hand qty))
      (set reserved (- reserved (min reserved from-reservation)))
      (let ((left (- (get reservations order 0) (min (get reservations order 0) from-reservation))))
        (set reservations (if (= left 0) (remove reservations order) (put reservations order left)))))
    (on consumed (set on-hand (- on-hand qty)))
    (on written-off (set on-hand (- on-hand qty)))
    (on back-ordered)

    (invariant not-oversold
      (doc "Promises never exceed the stock on hand; back-orderable SKUs may exceed it by their tolerance, which back-orders the shortfall.")
      (<= reserved on-hand)
      (policy (if (= availability 'back-orderable)
                (relaxed
                  (tolerance back-order-tolerance)
                  (on-violation (emit back-ordered (short (- reserved (min reserved on-hand))))))
                strict))))

  (aggregate order
    (doc "A customer order of zero or more items, each reserved as it is added, picked, then shipped together.")
    (key order-id)
    (state
      (status order-status 'open)
      (items (map sku u32) (doc "Ordered units per SKU, each reserved in the warehouse."))
      (picked (map sku u32) (doc "Picked units per SKU."))
      (open-lines u32 0 (doc "Items not fully picked yet.")))

    (event item-added (doc "An item was added (or more of it); the warehouse reserves it.") (item sku) (qty u32))
    (event item-reserved (doc "The warehouse reserved an item for the order.") (item sku) (qty u32))
    (event item-dropped
      (doc "The warehouse could not reserve an item, so the order does without it.")
      (item sku) (qty u32))
    (event placed (doc "The customer submitted the order.") (lines u32))
    (event item-picked
      (doc "Units of an item were picked; `completes-line` when the item is now fully picked.")
      (item sku) (qty u32) (completes-line bool))
    (event packed (doc "Every item is picked: the order is ready to ship."))
    (event shipped (doc "The order left the factory.") (carrier string))
    (event cancelled (doc "The order was cancelled.") (reason string))
    (event item-released
      (doc "After a cancellation: one item's reservation is to be released, one event per item.")
      (item sku) (qty u32))

    (command add-item
      (params (item sku) (qty u32))
      (require (= status 'open) not-open "the order is no longer open")
      (require (> qty 0) no-quantity "the quantity must be positive")
      (emit item-added item qty))

    (command confirm-reservation
      (doc "The warehouse reserved an item. An order that was cancelled meanwhile refuses it, and the `reservations` process releases it again.")
      (params (item sku) (qty u32))
      (require (or (= status 'open) (= status 'placed)) not-active "the order is packed, shipped or cancelled")
      (emit item-reserved item qty))

    (command drop-item
      (doc "Compensation: the warehouse refused the reservation. Dropping the last item of a placed order cancels it.")
      (params (item sku) (qty u32))
      (require (or (= status 'open) (= status 'placed)) not-active "the order is packed, shipped or cancelled")
      (when (contains items item)
        (emit item-dropped item (qty (min qty (get items item 0))))
        (when (and (= status 'placed) (= (count items) 1) (<= (get items item 0) qty))
          (emit cancelled (reason "no item could be reserved")))))

    (command place
      (require (= status 'open) not-open "the order is no longer open")
      (require (not (is-empty items)) empty-order "an order needs at least one item")
      (emit placed (lines (as u32 (count items)))))

    (command record-pick
      (doc "Record units picked for the order; the pick that completes the last item packs the order.")
      (params (item sku) (qty u32))
      (require (= status 'placed) not-placed "the order is not placed")
      (require (contains items item) not-in-order "the order has no such item")
      (let ((ordered (get items item 0))
            (before (get picked item 0))
            (completes (and (< before ordered) (>= (+ before qty) ordered))))
        (emit item-picked item qty (completes-line completes))
        (when (and completes (= open-lines 1))
          (emit packed))))

    (command ship
      (params (carrier string))
      (require (= status 'packed) not-packed "the order is not packed")
      (emit shipped carrier))

    (command cancel
      (params (reason string))
      (require (or (= status 'open) (= status 'placed)) not-active "the order is packed, shipped or cancelled")
      (emit cancelled reason))

    (command release-next
      (doc "Release the next reserved item of a cancelled order; sent by the `release-reservations` process until none is left.")
      (require (= status 'cancelled) not-cancelled "the order is not cancelled")
      (let ((next (min-key items)))
        (when (is-some next)
          (let ((item (unwrap-or next "")))
            (emit item-released item (qty (get items item 0)))))))

    (on item-added
      (unless (contains items item) (set open-lines (+ open-lines 1)))
      (set items (update items item (ordered 0) (+ ordered qty))))
    (on item-reserved)
    (on item-dropped
      (let ((left (- (get items item 0) (min (get items item 0) qty))))
        (when (= left 0) (set open-lines (- open-lines (min open-lines 1))))
        (set items (if (= left 0) (remove items item) (put items item left)))))
    (on placed (set status 'placed))
    (on item-picked
      (set picked (update picked item (done 0) (+ done qty)))
      (when completes-line (set open-lines (- open-lines (min open-lines 1)))))
    (on packed (set status 'packed))
    (on shipped (set status 'shipped))
    (on cancelled (set status 'cancelled))
    (on item-released (set items (remove items item)))

    (invariant shipped-orders-are-complete
      (doc "An order is packed or shipped only when no item is left to pick.")
      (or (and (!= status 'packed) (!= status 'shipped)) (= open-lines 0))))

  (aggregate assembly-job
    (doc "Builds units of a product on one machine from materials issued by the warehouse.")
    (key job-id)
    (state
      (status job-status 'new)
      (product sku "")
      (qty u32 0)
      (machine machine-id "")
      (materials (map sku u32) (doc "Materials the job needs."))
      (issued (set sku) (doc "Materials the warehouse has issued to the job."))
      (missing (set sku) (doc "Materials the warehouse could not issue.")))

    (event planned (doc "The job was planned.") (product sku) (qty u32) (machine machine-id))
    (event material-added (doc "A material is needed; the warehouse issues it.") (material sku) (qty u32))
    (event material-issued (doc "The warehouse issued a material to the job.") (material sku) (qty u32))
    (event material-missing (doc "The warehouse could not issue a material.") (material sku) (qty u32))
    (event started (doc "The job went onto its machine.") (machine machine-id))
    (event completed (doc "The products are built.") (product sku) (qty u32) (machine machine-id))
    (event aborted (doc "The job stopped; issued materials are scrapped.") (reason string) (machine machine-id))

    (command plan
      (params (product sku) (qty u32) (machine machine-id))
      (require (= status 'new) already-planned "the job is already planned")
      (require (> qty 0) no-quantity "the quantity must be positive")
      (emit planned product qty machine))

    (command add-material
      (doc "Add a material the job needs; the `assembly` process asks the warehouse to issue it.")
      (params (material sku) (qty u32))
      (require (= status 'planned) not-planned "the job is not being planned")
      (require (> qty 0) no-quantity "the quantity must be positive")
      (require (not (contains materials material)) material-already-added "the job already has this material")
      (emit material-added material qty))

    (command confirm-material
      (doc "The warehouse issued a material. A job that is already done or aborted refuses it, and the process puts the units back on the shelf.")
      (params (material sku) (qty u32))
      (require (or (= status 'planned) (= status 'running)) already-finished "the job is already done or aborted")
      (emit material-issued material qty))

    (command mark-material-missing
      (doc "Compensation: the warehouse refused to issue a material.")
      (params (material sku) (qty u32))
      (require (= status 'planned) not-planned "the job is not being planned")
      (emit material-missing material qty))

    (command start
      (require (= status 'planned) not-planned "the job is not being planned")
      (require (not (is-empty materials)) no-materials "a job needs materials")
      (require (is-empty missing) materials-missing "some materials could not be issued")
      (require (= (count issued) (count materials)) materials-pending "some materials are not issued yet")
      (emit started machine))

    (command complete
      (require (= status 'running) not-running "the job is not running")
      (emit completed product qty machine))

    (command abort
      (params (reason string))
      (require (or (= status 'planned) (= status 'running)) already-finished "the job is already done or aborted")
      (emit aborted reason machine))

    (on planned
      (set status 'planned)
      (set product product)
      (set qty qty)
      (set machine machine))
    (on material-added (set materials (update materials material (issued 0) (+ issued qty))))
    (on material-issued (set issued (insert issued material)))
    (on material-missing (set missing (insert missing material)))
    (on started (set status 'running))
    (on completed (set status 'done))
    (on aborted (set status 'aborted)))

  (aggregate machine
    (doc "A machine of an assembly line: runs one job at a time, and breaks down.")
    (key machine-id)
    (state
      (status machine-status 'idle)
      (job (optional job-id) (doc "The job it runs.")))

    (event occupied (doc "A job went onto the machine.") (job job-id))
    (event freed (doc "The job left the machine.") (job job-id))
    (event broke-down (doc "The machine broke; the job it ran, if any, is aborted.") (job (optional job-id)) (cause string))
    (event repaired (doc "The machine works again."))

    (command occupy
      (params (job job-id))
      (require (!= status 'broken) machine-broken "the machine is broken")
      (require (or (= status 'idle) (= state.job (some job))) machine-busy "the machine runs another job")
      (unless (= state.job (some job)) (emit occupied job)))

    (command free
      (params (job job-id))
      (when (= state.job (some job)) (emit freed job)))

    (command break-down
      (params (cause string))
      (require (!= status 'broken) machine-broken "the machine is broken")
      (emit broke-down job cause))

    (command repair
      (require (= status 'broken) not-broken "the machine is not broken")
      (emit repaired))

    (on occupied
      (set status 'busy)
      (set job (some job)))
    (on freed
      (set status 'idle)
      (set job none))
    (on broke-down
      (set status 'broken)
      (set job none))
    (on repaired (set status 'idle)))

  (process reservations
    (doc "Reserve each item as it is added to an order; drop it from the order when the warehouse refuses, and release a reservation the order no longer wants (it was cancelled while the reservation was on its way).")
    (on order/item-added
      (send stock-item item reserve (order id) qty
        (on-rejected (send order id drop-item item qty))))
    (on stock-item/reserved
      (send order order confirm-reservation (item id) qty
        (on-rejected (send stock-item id release order)))))

  (process release-reservations
    (doc "When an order is cancelled, release its items one by one: each released item asks for the next.")
    (on order/cancelled
      (send order id release-next))
    (on order/item-released
      (send stock-item item release (order id))
      (send order id release-next)))

  (process picking
    (doc "Tell the order what the warehouse picked for it; put the units back when the order no longer takes them.")
    (on stock-item/picked
      (send order order record-pick (item id) qty
        (on-rejected (send stock-item id return-to-shelf order qty)))))

  (process assembly
    (doc "Issue materials to jobs, put jobs on their machines, and put finished products on the shelves.")
    (on assembly-job/material-added
      (send stock-item material consume (job id) qty
        (on-rejected (send assembly-job id mark-material-missing material qty))))
    (on stock-item/consumed
      (send assembly-job job confirm-material (material id) qty
        (on-rejected (send stock-item id receive qty (source 'returned)))))
    (on assembly-job/started
      (send machine machine occupy (job id)
        (on-rejected (send assembly-job id abort (reason "the machine is not available")))))
    (on assembly-job/completed
      (send stock-item product receive qty (source 'assembly))
      (send machine machine free (job id)))
    (on assembly-job/aborted
      (send machine machine free (job id)))
    (on machine/broke-down
      (when (is-some job)
        (send assembly-job (unwrap-or job "") abort (reason cause)))))

  (view stock-movements
    (doc "Per SKU: what came in, went out and was lost, and the back-orders raised.")
    (key sku)
    (column received (sum u32))
    (column picked (sum u32))
    (column consumed (sum u32))
    (column written-off (sum u32))
    (column back-orders count)
    (column last-shortfall (latest u32))
    (column losses (list loss 20) (doc "The kinds of the last 20 losses, oldest first."))
    (on stock-item/received (received qty))
    (on stock-item/picked (picked qty))
    (on stock-item/consumed (consumed qty))
    (on stock-item/written-off (written-off qty) (losses loss))
    (on stock-item/back-ordered (back-orders) (last-shortfall short)))

  (view order-progress
    (doc "Per order: its status, items and picks.")
    (key order-id)
    (column status (latest order-status))
    (column items-added count)
    (column items-reserved count)
    (column items-dropped count)
    (column units-picked (sum u32))
    (column placed-at (latest timestamp))
    (column shipped-at (latest timestamp))
    (on order/item-added (items-added))
    (on order/item-reserved (items-reserved))
    (on order/item-dropped (items-dropped))
    (on order/placed (status 'placed) (placed-at (occurred-at)))
    (on order/item-picked (units-picked qty))
    (on order/packed (status 'packed))
    (on order/shipped (status 'shipped) (shipped-at (occurred-at)))
    (on order/cancelled (status 'cancelled)))

  (view machine-health
    (doc "Per machine: breakdowns and jobs run.")
    (key machine-id)
    (column breakdowns count)
    (column last-cause (latest string))
    (column jobs count)
    (on machine/broke-down (breakdowns) (last-cause cause))
    (on machine/occupied (jobs)))

  ;; Stock: accepted paths and the not-oversold policy.

  (scenario "a rare item is reserved within the stock"
    (given (registered (availability 'rare) (back-order-tolerance 0)) (received (qty 3) (source 'delivery)))
    (when (reserve (order "ord-2026-000000001") (qty 3)))
    (then (reserved (order "ord-2026-000000001") (qty 3))))

  (scenario "a rare item is never oversold"
    (doc "Strict: the last unit goes to one order only.")
    (given (registered (availability 'rare) (back-order-tolerance 5))
           (received (qty 1) (source 'delivery))
           (reserved (order "ord-a") (qty 1)))
    (when (reserve (order "ord-b") (qty 1)))
    (then (rejected not-oversold)))

  (scenario "a back-orderable item may be promised ahead of the stock"
    (doc "Relaxed within the tolerance: accepted, and the shortfall is back-ordered.")
    (given (registered (availability 'back-orderable) (back-order-tolerance 10))
           (received (qty 2) (source 'delivery))
           (reserved (order "ord-a") (qty 2)))
    (when (reserve (order "ord-b") (qty 3)))
    (then (reserved (order "ord-b") (qty 3)) (back-ordered (short 3))))

  (scenario "a back-orderable item is not promised beyond its tolerance"
    (doc "Relaxed beyond the tolerance: rejected.")
    (given (registered (availability 'back-orderable) (back-order-tolerance 10))
           (received (qty 2) (source 'delivery)))
    (when (reserve (order "ord-b") (qty 13)))
    (then (rejected not-oversold)))

  (scenario "a back-ordered item is not back-ordered twice"
    (doc "Relaxed, already past the stock and within the tolerance: accepted without a second reaction.")
    (given (registered (availability 'back-orderable) (back-order-tolerance 10))
           (reserved (order "ord-a") (qty 2)))
    (when (reserve (order "ord-b") (qty 1)))
    (then (reserved (order "ord-b") (qty 1))))

  (scenario "picking the reserved units consumes the reservation"
    (given (registered (availability 'rare) (back-order-tolerance 0))
           (received (qty 5) (source 'delivery))
           (reserved (order "ord-a") (qty 2)))
    (when (pick (order "ord-a") (qty 2)))
    (then (picked (order "ord-a") (qty 2) (from-reservation 2))))

  (scenario "over-picking a rare item is rejected"
    (doc "Picking more than reserved would take a unit promised to another order.")
    (given (registered (availability 'rare) (back-order-tolerance 0))
           (received (qty 3) (source 'delivery))
           (reserved (order "ord-a") (qty 1))
           (reserved (order "ord-b") (qty 2)))
    (when (pick (order "ord-a") (qty 2)))
    (then (rejected not-oversold)))

  (scenario "over-picking a back-orderable item back-orders the difference"
    (given (registered (availability 'back-orderable) (back-order-tolerance 4))
           (received (qty 3) (source 'delivery))
           (reserved (order "ord-a") (qty 1))
           (reserved (order "ord-b") (qty 2)))
    (when (pick (order "ord-a") (qty 2)))
    (then (picked (order "ord-a") (qty 2) (from-reservation 1)) (back-ordered (short 1))))

  (scenario "a loss that uncovers promises is recorded and back-ordered"
    (doc "Write-offs are relaxed with the whole reservation as tolerance: a loss is a fact, even for a rare item.")
    (given (registered (availability 'rare) (back-order-tolerance 0))
           (received (qty 4) (source 'delivery))
           (reserved (order "ord-a") (qty 3)))
    (when (write-off (qty 2) (loss 'lost)))
    (then (written-off (qty 2) (loss 'lost)) (back-ordered (short 1))))

  (scenario "materials promised to orders are not consumed"
    (doc "Consumption is strict even for back-orderable SKUs.")
    (given (registered (availability 'back-orderable) (back-order-tolerance 10))
           (received (qty 3) (source 'delivery))
           (reserved (order "ord-a") (qty 2)))
    (when (consume (job "job-1") (qty 2)))
    (then (rejected not-oversold)))

  (scenario "free materials are issued to a job"
    (given (registered (availability 'rare) (back-order-tolerance 0)) (received (qty 3) (source 'delivery)))
    (when (consume (job "job-1") (qty 3)))
    (then (consumed (job "job-1") (qty 3))))

  (scenario "releasing an order's reservation returns all of it"
    (given (registered (availability 'rare) (back-order-tolerance 0))
           (received (qty 3) (source 'delivery))
           (reserved (order "ord-a") (qty 1))
           (reserved (order "ord-a") (qty 1)))
    (when (release (order "ord-a")))
    (then (released (order "ord-a") (qty 2))))

  (scenario "units picked for a cancelled order go back on the shelf"
    (when (return-to-shelf (order "ord-a") (qty 2)))
    (then (received (qty 2) (source 'returned))))

  (scenario "an oversold rare item takes a delivery that does not cover every promise"
    (given (registered (availability 'rare) (back-order-tolerance 0))
           (received (qty 4) (source 'delivery))
           (reserved (order "ord-a") (qty 4))
           (written-off (qty 3) (loss 'broken))
           (back-ordered (short 3)))
    (when (receive (qty 1) (source 'delivery)))
    (then (received (qty 1) (source 'delivery))))

  (scenario "an oversold rare item is not picked until someone decides who goes short"
    (doc "Strict: after a loss uncovered promises, which order loses out is decided by releasing a reservation or receiving stock, not by whichever robot picks first.")
    (given (registered (availability 'rare) (back-order-tolerance 0))
           (received (qty 4) (source 'delivery))
           (reserved (order "ord-a") (qty 2))
           (reserved (order "ord-b") (qty 2))
           (written-off (qty 1) (loss 'lost))
           (back-ordered (short 1)))
    (when (pick (order "ord-a") (qty 2)))
    (then (rejected not-oversold)))

  ;; Stock: every rejection.

  (scenario "a SKU is registered once"
    (given (registered (availability 'rare) (back-order-tolerance 0)))
    (when (register (availability 'back-orderable) (back-order-tolerance 5)))
    (then (rejected already-registered)))

  (scenario "an unknown SKU receives nothing"
    (when (receive (qty 1) (source 'delivery)))
    (then (rejected unknown-sku)))

  (scenario "a reservation needs a quantity"
    (given (registered (availability 'rare) (back-order-tolerance 0)))
    (when (reserve (order "ord-a") (qty 0)))
    (then (rejected no-quantity)))

  (scenario "an order without a reservation releases nothing"
    (given (registered (availability 'rare) (back-order-tolerance 0)))
    (when (release (order "ord-a")))
    (then (rejected no-reservation)))

  (scenario "nothing is picked from an empty shelf"
    (doc "Physical stock is strict for every SKU: a back-order waits for the delivery.")
    (given (registered (availability 'back-orderable) (back-order-tolerance 10)) (reserved (order "ord-a") (qty 1)))
    (when (pick (order "ord-a") (qty 1)))
    (then (rejected not-on-shelf)))

  (scenario "only units on hand are written off"
    (given (registered (availability 'rare) (back-order-tolerance 0)) (received (qty 1) (source 'delivery)))
    (when (write-off (qty 2) (loss 'broken)))
    (then (rejected more-than-on-hand)))

  ;; Orders.

  (scenario "an item is added to an open order"
    (when (add-item (item "SKU-100234") (qty 1)))
    (then (item-added (item "SKU-100234") (qty 1))))

  (scenario "an order with items is placed"
    (given (item-added (item "SKU-100234") (qty 1)) (item-added (item "WIDGET-BLUE-XL") (qty 2)))
    (when place)
    (then (placed (lines 2))))

  (scenario "an empty order cannot be placed"
    (when place)
    (then (rejected empty-order)))

  (scenario "a placed order takes no more items"
    (given (item-added (item "SKU-100234") (qty 1)) (placed (lines 1)))
    (when (add-item (item "SKU-100235") (qty 1)))
    (then (rejected not-open)))

  (scenario "an item needs a quantity"
    (when (add-item (item "SKU-100234") (qty 0)))
    (then (rejected no-quantity)))

  (scenario "a reservation is confirmed to the order"
    (given (item-added (item "SKU-100234") (qty 1)))
    (when (confirm-reservation (item "SKU-100234") (qty 1)))
    (then (item-reserved (item "SKU-100234") (qty 1))))

  (scenario "a cancelled order refuses a late reservation"
    (doc "The `reservations` process then releases it in the warehouse.")
    (given (item-added (item "SKU-100234") (qty 1)) (cancelled (reason "customer")))
    (when (confirm-reservation (item "SKU-100234") (qty 1)))
    (then (rejected not-active)))

  (scenario "an unreservable item is dropped"
    (given (item-added (item "SKU-100234") (qty 1)) (item-added (item "SKU-100235") (qty 1)) (placed (lines 2)))
    (when (drop-item (item "SKU-100235") (qty 1)))
    (then (item-dropped (item "SKU-100235") (qty 1))))

  (scenario "dropping the only item cancels the placed order"
    (given (item-added (item "SKU-100234") (qty 1)) (placed (lines 1)))
    (when (drop-item (item "SKU-100234") (qty 1)))
    (then (item-dropped (item "SKU-100234") (qty 1)) (cancelled (reason "no item could be reserved"))))

  (scenario "a pick that completes the last item packs the order"
    (given (item-added (item "SKU-100234") (qty 2)) (item-added (item "SKU-100235") (qty 1)) (placed (lines 2))
           (item-picked (item "SKU-100235") (qty 1) (completes-line true))
           (item-picked (item "SKU-100234") (qty 1) (completes-line false)))
    (when (record-pick (item "SKU-100234") (qty 1)))
    (then (item-picked (item "SKU-100234") (qty 1) (completes-line true)) packed))

  (scenario "a partial pick does not pack"
    (given (item-added (item "SKU-100234") (qty 2)) (placed (lines 1)))
    (when (record-pick (item "SKU-100234") (qty 1)))
    (then (item-picked (item "SKU-100234") (qty 1) (completes-line false))))

  (scenario "picks for a cancelled order are refused"
    (doc "The `picking` process then returns the units to the shelf.")
    (given (item-added (item "SKU-100234") (qty 1)) (placed (lines 1)) (cancelled (reason "customer")))
    (when (record-pick (item "SKU-100234") (qty 1)))
    (then (rejected not-placed)))

  (scenario "a pick of an item the order does not have is refused"
    (given (item-added (item "SKU-100234") (qty 1)) (placed (lines 1)))
    (when (record-pick (item "SKU-999") (qty 1)))
    (then (rejected not-in-order)))

  (scenario "a packed order ships"
    (given (item-added (item "SKU-100234") (qty 1)) (placed (lines 1))
           (item-picked (item "SKU-100234") (qty 1) (completes-line true)) packed)
    (when (ship (carrier "dhl")))
    (then (shipped (carrier "dhl"))))

  (scenario "an order that is not packed does not ship"
    (given (item-added (item "SKU-100234") (qty 1)) (placed (lines 1)))
    (when (ship (carrier "dhl")))
    (then (rejected not-packed)))

  (scenario "a shipped order cannot be cancelled"
    (given (item-added (item "SKU-100234") (qty 1)) (placed (lines 1))
           (item-picked (item "SKU-100234") (qty 1) (completes-line true)) packed (shipped (carrier "dhl")))
    (when (cancel (reason "customer")))
    (then (rejected not-active)))

  (scenario "a cancelled order releases its items one at a time"
    (given (item-added (item "SKU-B") (qty 1)) (item-added (item "SKU-A") (qty 2)) (cancelled (reason "customer")))
    (when release-next)
    (then (item-released (item "SKU-A") (qty 2))))

  (scenario "releasing stops when no item is left"
    (given (item-added (item "SKU-A") (qty 2)) (cancelled (reason "customer")) (item-released (item "SKU-A") (qty 2)))
    (when release-next)
    (then))

  (scenario "only a cancelled order releases its items"
    (given (item-added (item "SKU-A") (qty 2)))
    (when release-next)
    (then (rejected not-cancelled)))

  (scenario "a packed order is complete"
    (doc "The invariant catches a history where an order was packed with an item still to pick.")
    (given (item-added (item "SKU-A") (qty 1)) (item-added (item "SKU-B") (qty 1)) (placed (lines 2)) packed)
    (when (ship (carrier "dhl")))
    (then (rejected shipped-orders-are-complete)))

  ;; Assembly and machines.

  (scenario "a job with all its materials starts"
    (given (planned (product "GADGET-7") (qty 5) (machine "line-1/press"))
           (material-added (material "STEEL-2MM") (qty 10))
           (material-issued (material "STEEL-2MM") (qty 10)))
    (when start)
    (then (started (machine "line-1/press"))))

  (scenario "a job is planned once"
    (given (planned (product "GADGET-7") (qty 5) (machine "line-1/press")))
    (when (plan (product "GADGET-8") (qty 1) (machine "line-1/press")))
    (then (rejected already-planned)))

  (scenario "a job waits for its materials to be issued"
    (doc "Issuing runs asynchronously: a job does not start before the warehouse has confirmed every material.")
    (given (planned (product "GADGET-7") (qty 5) (machine "line-1/press"))
           (material-added (material "STEEL-2MM") (qty 10))
           (material-added (material "CHIP-A1") (qty 5))
           (material-issued (material "STEEL-2MM") (qty 10)))
    (when start)
    (then (rejected materials-pending)))

  (scenario "a material is added once"
    (given (planned (product "GADGET-7") (qty 5) (machine "line-1/press"))
           (material-added (material "STEEL-2MM") (qty 10)))
    (when (add-material (material "STEEL-2MM") (qty 2)))
    (then (rejected material-already-added)))

  (scenario "an issued material is confirmed to the job"
    (given (planned (product "GADGET-7") (qty 5) (machine "line-1/press"))
           (material-added (material "STEEL-2MM") (qty 10)))
    (when (confirm-material (material "STEEL-2MM") (qty 10)))
    (then (material-issued (material "STEEL-2MM") (qty 10))))

  (scenario "an aborted job refuses a material issued late"
    (doc "The `assembly` process then puts the units back on the shelf.")
    (given (planned (product "GADGET-7") (qty 5) (machine "line-1/press"))
           (material-added (material "STEEL-2MM") (qty 10))
           (aborted (reason "cancelled") (machine "line-1/press")))
    (when (confirm-material (material "STEEL-2MM") (qty 10)))
    (then (rejected already-finished)))

  (scenario "a job without materials does not start"
    (given (planned (product "GADGET-7") (qty 5) (machine "line-1/press")))
    (when start)
    (then (rejected no-materials)))

  (scenario "a job missing a material does not start"
    (given (planned (product "GADGET-7") (qty 5) (machine "line-1/press"))
           (material-added (material "STEEL-2MM") (qty 10))
           (material-missing (material "CHIP-A1") (qty 5)))
    (when start)
    (then (rejected materials-missing)))

  (scenario "materials are added only while planning"
    (when (add-material (material "STEEL-2MM") (qty 10)))
    (then (rejected not-planned)))

  (scenario "a running job completes"
    (given (planned (product "GADGET-7") (qty 5) (machine "line-1/press"))
           (material-added (material "STEEL-2MM") (qty 10))
           (material-issued (material "STEEL-2MM") (qty 10))
           (started (machine "line-1/press")))
    (when complete)
    (then (completed (product "GADGET-7") (qty 5) (machine "line-1/press"))))

  (scenario "a job that is not running does not complete"
    (given (planned (product "GADGET-7") (qty 5) (machine "line-1/press")))
    (when complete)
    (then (rejected not-running)))

  (scenario "a finished job is not aborted"
    (given (planned (product "GADGET-7") (qty 5) (machine "line-1/press"))
           (material-added (material "STEEL-2MM") (qty 10))
           (material-issued (material "STEEL-2MM") (qty 10))
           (started (machine "line-1/press"))
           (completed (product "GADGET-7") (qty 5) (machine "line-1/press")))
    (when (abort (reason "late")))
    (then (rejected already-finished)))

  (scenario "a machine breaking down names the job it ran"
    (given (occupied (job "job-1")))
    (when (break-down (cause "hydraulics")))
    (then (broke-down (job (some "job-1")) (cause "hydraulics"))))

  (scenario "a broken machine takes no job"
    (given (broke-down (job none) (cause "hydraulics")))
    (when (occupy (job "job-2")))
    (then (rejected machine-broken)))

  (scenario "a busy machine takes no other job"
    (given (occupied (job "job-1")))
    (when (occupy (job "job-2")))
    (then (rejected machine-busy)))

  (scenario "a working machine needs no repair"
    (when repair)
    (then (rejected not-broken))))
