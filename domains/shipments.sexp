;; Shipments: parcels scanned in the field, where the network drops out. Devices keep scanning offline and
;; upload later, so scans arrive late and out of order; each one carries the time it really happened and is
;; sent backdated to that time. docs/domains.md explains the model.
(domain shipments
  (doc "Parcels scanned at depots, loaded onto routes, delivered or returned; late scans keep their real time.")

  (id parcel-id (doc "The parcel's label barcode."))
  (id depot-id (doc "A depot."))
  (id route-id (doc "One van's delivery run of one day."))

  (enum parcel-status
    (new (doc "Not registered."))
    (registered (doc "The sender announced it; no scan yet."))
    (at-depot (doc "Scanned in at a depot."))
    (out-for-delivery (doc "Loaded onto a route."))
    (attempted (doc "A delivery failed; the parcel goes back to a depot."))
    (delivered (doc "Handed over."))
    (returned (doc "Handed back to the sender.")))
  (enum scan-kind
    (arrived (doc "Scanned in at a depot."))
    (loaded (doc "Loaded onto a route."))
    (delivered (doc "Handed over to the recipient."))
    (failed (doc "Nobody there, refused, wrong address."))
    (returned (doc "Handed back to the sender.")))
  (record scan
    (doc "One scan, as a device recorded it: the device and the real time identify it.")
    (device string)
    (at timestamp))
  (record history-entry
    (doc "One line of a parcel's history.")
    (kind scan-kind)
    (depot (optional depot-id))
    (at timestamp)
    (device string))

  (aggregate parcel
    (doc "One parcel. Its status follows the most recent scan by real time, whatever order the scans arrive in.")
    (key parcel-id)
    (state
      (status parcel-status 'new)
      (registered-at timestamp 0)
      (destination (optional depot-id) (doc "The depot that delivers it."))
      (depot (optional depot-id) (doc "The depot of the most recent depot scan."))
      (route (optional route-id) (doc "The route of the most recent load scan."))
      (last-scan-at timestamp 0 (doc "The real time of the most recent scan."))
      (scans (set scan) (doc "Every scan applied, so that a device uploading twice changes nothing."))
      (deliveries u32 0)
      (failed-attempts u32 0)
      (return-due bool false))

    (event registered
      (doc "The sender announced the parcel.")
      (sender string) (recipient string) (destination depot-id) (at timestamp))
    (event arrived-at-depot (doc "Scanned in at a depot.") (depot depot-id) (device string) (scanned-at timestamp))
    (event loaded
      (doc "Loaded onto a route's van.")
      (depot depot-id) (route route-id) (device string) (scanned-at timestamp))
    (event delivered
      (doc "Handed over to the recipient.")
      (route (optional route-id)) (signed-by string) (device string) (scanned-at timestamp))
    (event delivery-failed
      (doc "A delivery attempt failed.")
      (route (optional route-id)) (reason string) (device string) (scanned-at timestamp))
    (event returned-to-sender (doc "Handed back to the sender.") (device string) (scanned-at timestamp))
    (event return-due (doc "Too many failed attempts: the parcel is to go back to its sender.") (attempts u32))

    (command register
      (params (sender string) (recipient string) (destination depot-id))
      (require (= status 'new) already-registered "the parcel is already registered")
      (emit registered sender recipient destination (at (now))))

    (command scan-in
      (doc "A depot scan. A scan uploaded twice is applied once.")
      (params (depot depot-id) (device string) (scanned-at timestamp))
      (require (!= status 'new) unknown-parcel "the parcel is not registered")
      (require (<= scanned-at (now)) from-the-future "a scan cannot have happened after it arrived")
      (require (>= scanned-at registered-at) before-registration "a scan cannot have happened before the parcel was registered")
      (unless (contains scans (make scan device (at scanned-at)))
        (emit arrived-at-depot depot device scanned-at)))

    (command load
      (params (depot depot-id) (route route-id) (device string) (scanned-at timestamp))
      (require (!= status 'new) unknown-parcel "the parcel is not registered")
      (require (<= scanned-at (now)) from-the-future "a scan cannot have happened after it arrived")
      (require (>= scanned-at registered-at) before-registration "a scan cannot have happened before the parcel was registered")
      (unless (contains scans (make scan device (at scanned-at)))
        (emit loaded depot route device scanned-at)))

    (command deliver
      (doc "A delivery scan. A parcel is delivered once: a second, different delivery scan is rejected.")
      (params (signed-by string) (device string) (scanned-at timestamp))
      (require (!= status 'new) unknown-parcel "the parcel is not registered")
      (require (<= scanned-at (now)) from-the-future "a scan cannot have happened after it arrived")
      (require (>= scanned-at registered-at) before-registration "a scan cannot have happened before the parcel was registered")
      (require (!= status 'returned) already-returned "the parcel went back to its sender")
      (unless (contains scans (make scan device (at scanned-at)))
        (emit delivered route signed-by device scanned-at)))

    (command fail-delivery
      (doc "A failed attempt. Three are allowed; two more made offline before the third reached the server are still recorded.")
      (params (reason string) (device string) (scanned-at timestamp))
      (require (!= status 'new) unknown-parcel "the parcel is not registered")
      (require (<= scanned-at (now)) from-the-future "a scan cannot have happened after it arrived")
      (require (>= scanned-at registered-at) before-registration "a scan cannot have happened before the parcel was registered")
      (require (= deliveries 0) already-delivered "the parcel was delivered")
      (unless (contains scans (make scan device (at scanned-at)))
        (emit delivery-failed route reason device scanned-at)))

    (command return-to-sender
      (params (device string) (scanned-at timestamp))
      (require (!= status 'new) unknown-parcel "the parcel is not registered")
      (require (<= scanned-at (now)) from-the-future "a scan cannot have happened after it arrived")
      (require (>= scanned-at registered-at) before-registration "a scan cannot have happened before the parcel was registered")
      (require (= deliveries 0) already-delivered "the parcel was delivered")
      (unless (contains scans (make scan device (at scanned-at)))
        (emit returned-to-sender device scanned-at)))

    (on registered
      (set status 'registered)
      (set registered-at at)
      (set destination (some destination)))
    (on arrived-at-depot
      (set scans (insert scans (make scan device (at scanned-at))))
      (when (>= scanned-at last-scan-at)
        (set status 'at-depot)
        (set depot (some depot))
        (set last-scan-at scanned-at)))
    (on loaded
      (set scans (insert scans (make scan device (at scanned-at))))
      (when (>= scanned-at last-scan-at)
        (set status 'out-for-delivery)
        (set depot (some depot))
        (set route (some route))
        (set last-scan-at scanned-at)))
    (on delivered
      (set scans (insert scans (make scan device (at scanned-at))))
      (set deliveries (+ deliveries 1))
      (set status 'delivered)
      (set last-scan-at (max last-scan-at scanned-at)))
    (on delivery-failed
      (set scans (insert scans (make scan device (at scanned-at))))
      (set failed-attempts (+ failed-attempts 1))
      (when (>= scanned-at last-scan-at)
        (set status 'attempted)
        (set last-scan-at scanned-at)))
    (on returned-to-sender
      (set scans (insert scans (make scan device (at scanned-at))))
      (set status 'returned)
      (set last-scan-at (max last-scan-at scanned-at)))
    (on return-due (set return-due true))

    (invariant delivered-once
      (doc "A parcel is delivered once.")
      (<= deliveries 1))
    (invariant at-most-three-attempts
      (doc "A parcel is attempted at most three times; attempts made offline before the third reached the server are recorded, up to two more, and the parcel is due back to its sender.")
      (<= failed-attempts 3)
      (policy (relaxed (tolerance 2) (on-violation (emit return-due (attempts failed-attempts)))))))

  (aggregate route
    (doc "One van's run: the parcels loaded onto it and what became of them.")
    (key route-id)
    (state
      (depot (optional depot-id))
      (planned-stops u32 0 (doc "How many stops the planners gave the van."))
      (stops (set parcel-id) (doc "Parcels loaded onto the van."))
      (done (set parcel-id) (doc "Parcels delivered or attempted.")))

    (event planned (doc "The route was planned.") (depot depot-id) (planned-stops u32))
    (event stop-added (doc "A parcel was loaded onto the van.") (parcel parcel-id))
    (event stop-done (doc "A stop was delivered or attempted.") (parcel parcel-id) (delivered bool))
    (event over-planned (doc "The van carries more parcels than planned.") (stops u64))

    (command plan
      (params (depot depot-id) (planned-stops u32))
      (require (is-none state.depot) already-planned "the route is already planned")
      (require (> planned-stops 0) no-stops "a route has stops")
      (emit planned depot planned-stops))

    (command add-stop
      (doc "Sent by the `routing` process for every load scan. The load happened, so a few extra parcels are accepted and reported.")
      (params (parcel parcel-id))
      (require (is-some depot) unknown-route "the route is not planned")
      (unless (contains stops parcel) (emit stop-added parcel)))

    (command complete-stop
      (params (parcel parcel-id) (delivered bool))
      (require (contains stops parcel) not-on-route "the parcel is not on this route")
      (unless (contains done parcel) (emit stop-done parcel delivered)))

    (on planned
      (set depot (some depot))
      (set planned-stops planned-stops))
    (on stop-added (set stops (insert stops parcel)))
    (on stop-done (set done (insert done parcel)))
    (on over-planned)

    (invariant within-planned-stops
      (doc "A van carries the parcels it was planned for; up to 5 more are accepted and reported, more are refused.")
      (<= (count stops) (as u64 planned-stops))
      (policy (relaxed (tolerance 5) (on-violation (emit over-planned (stops (count stops))))))))

  (process routing
    (doc "Keep each route's stops in step with the parcels' scans.")
    (on parcel/loaded
      (send route route add-stop (parcel id)))
    (on parcel/delivered
      (when (is-some route)
        (send route (unwrap-or route "") complete-stop (parcel id) (delivered true))))
    (on parcel/delivery-failed
      (when (is-some route)
        (send route (unwrap-or route "") complete-stop (parcel id) (delivered false)))))

  (view parcel-tracking
    (doc "Per parcel: where it is and its history, ordered by when each scan happened, not when it arrived.")
    (key parcel-id)
    (column status (latest parcel-status) (doc "The status of the most recent scan by real time."))
    (column depot (latest depot-id) (doc "The depot of the most recent depot or load scan."))
    (column history (list history-entry 100) (doc "The last 100 scans, oldest first."))
    (column scans count)
    (column last-scan-at (max timestamp))
    (on parcel/registered (status 'registered))
    (on parcel/arrived-at-depot
      (status 'at-depot) (depot depot) (scans) (last-scan-at scanned-at)
      (history (make history-entry (kind 'arrived) (depot (some depot)) (at scanned-at) device)))
    (on parcel/loaded
      (status 'out-for-delivery) (depot depot) (scans) (last-scan-at scanned-at)
      (history (make history-entry (kind 'loaded) (depot (some depot)) (at scanned-at) device)))
    (on parcel/delivered
      (status 'delivered) (scans) (last-scan-at scanned-at)
      (history (make history-entry (kind 'delivered) (depot none) (at scanned-at) device)))
    (on parcel/delivery-failed
      (status 'attempted) (scans) (last-scan-at scanned-at)
      (history (make history-entry (kind 'failed) (depot none) (at scanned-at) device)))
    (on parcel/returned-to-sender
      (status 'returned) (scans) (last-scan-at scanned-at)
      (history (make history-entry (kind 'returned) (depot none) (at scanned-at) device))))

  (view depot-activity
    (doc "Per depot: parcels scanned in and loaded, the most recent ones by when they happened.")
    (key depot-id)
    (column arrivals count)
    (column loads count)
    (column recent-arrivals (list parcel-id 50) (doc "The last 50 parcels scanned in, oldest first."))
    (column recent-loads (list parcel-id 50))
    (column last-arrival (latest parcel-id))
    (column last-scan-at (max timestamp))
    (on parcel/arrived-at-depot
      (key depot)
      (arrivals) (recent-arrivals id) (last-arrival id) (last-scan-at scanned-at))
    (on parcel/loaded
      (key depot)
      (loads) (recent-loads id) (last-scan-at scanned-at)))

  (view route-progress
    (doc "Per route: stops loaded, delivered and attempted.")
    (key route-id)
    (column planned-stops (latest u32))
    (column stops count)
    (column delivered count)
    (column attempted count)
    (on route/planned (planned-stops planned-stops))
    (on route/stop-added (stops))
    (on route/stop-done (when delivered) (delivered))
    (on route/stop-done (when (not delivered)) (attempted)))

  ;; The scenarios run at 2026-01-01T00:00:00Z, 1767225600000000 microseconds. The parcel was registered the
  ;; day before at 1767139200000000; scans happen in the hours between.

  (scenario "a parcel is registered"
    (when (register (sender "acme") (recipient "ann") (destination "depot-north")))
    (then (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767225600000000))))

  (scenario "a parcel is registered once"
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000)))
    (when (register (sender "acme") (recipient "ann") (destination "depot-north")))
    (then (rejected already-registered)))

  (scenario "a depot scans a parcel in"
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000)))
    (when (scan-in (depot "depot-north") (device "hh-17") (scanned-at 1767160800000000)))
    (then (arrived-at-depot (depot "depot-north") (device "hh-17") (scanned-at 1767160800000000))))

  (scenario "an unregistered parcel is not scanned"
    (when (scan-in (depot "depot-north") (device "hh-17") (scanned-at 1767160800000000)))
    (then (rejected unknown-parcel)))

  (scenario "a scan from the future is rejected"
    (doc "The device's clock is ahead of the server's.")
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000)))
    (when (scan-in (depot "depot-north") (device "hh-17") (scanned-at 1767229200000000)))
    (then (rejected from-the-future)))

  (scenario "a scan from before the registration is rejected"
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000)))
    (when (load (depot "depot-north") (route "r-2026-01-01-07") (device "hh-17") (scanned-at 1767135600000000)))
    (then (rejected before-registration)))

  (scenario "a scan uploaded twice is applied once"
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000))
           (arrived-at-depot (depot "depot-north") (device "hh-17") (scanned-at 1767160800000000)))
    (when (scan-in (depot "depot-north") (device "hh-17") (scanned-at 1767160800000000)))
    (then))

  (scenario "a late load scan is recorded after the delivery it preceded"
    (doc "The van's device was offline: the delivery arrived first, the earlier load scan now. It is recorded, and the parcel stays delivered.")
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000))
           (delivered (route none) (signed-by "ann") (device "hh-22") (scanned-at 1767200000000000)))
    (when (load (depot "depot-north") (route "r-2026-01-01-07") (device "hh-22") (scanned-at 1767190000000000)))
    (then (loaded (depot "depot-north") (route "r-2026-01-01-07") (device "hh-22") (scanned-at 1767190000000000))))

  (scenario "a loaded parcel is delivered on its route"
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000))
           (loaded (depot "depot-north") (route "r-2026-01-01-07") (device "hh-22") (scanned-at 1767190000000000)))
    (when (deliver (signed-by "ann") (device "hh-22") (scanned-at 1767200000000000)))
    (then (delivered (route (some "r-2026-01-01-07")) (signed-by "ann") (device "hh-22") (scanned-at 1767200000000000))))

  (scenario "a parcel is delivered once"
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000))
           (delivered (route none) (signed-by "ann") (device "hh-22") (scanned-at 1767200000000000)))
    (when (deliver (signed-by "bob") (device "hh-23") (scanned-at 1767201000000000)))
    (then (rejected delivered-once)))

  (scenario "a returned parcel is not delivered"
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000))
           (returned-to-sender (device "hh-9") (scanned-at 1767200000000000)))
    (when (deliver (signed-by "ann") (device "hh-22") (scanned-at 1767201000000000)))
    (then (rejected already-returned)))

  (scenario "a delivered parcel is not returned"
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000))
           (delivered (route none) (signed-by "ann") (device "hh-22") (scanned-at 1767200000000000)))
    (when (return-to-sender (device "hh-9") (scanned-at 1767201000000000)))
    (then (rejected already-delivered)))

  (scenario "a third failed attempt is recorded"
    (doc "Within the bound: no reaction.")
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000))
           (delivery-failed (route none) (reason "nobody home") (device "hh-22") (scanned-at 1767160000000000))
           (delivery-failed (route none) (reason "nobody home") (device "hh-22") (scanned-at 1767170000000000)))
    (when (fail-delivery (reason "nobody home") (device "hh-22") (scanned-at 1767180000000000)))
    (then (delivery-failed (route none) (reason "nobody home") (device "hh-22") (scanned-at 1767180000000000))))

  (scenario "a fourth failed attempt makes the parcel due back"
    (doc "Relaxed, within the tolerance, crossing the bound: accepted and `return-due`.")
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000))
           (delivery-failed (route none) (reason "nobody home") (device "hh-22") (scanned-at 1767160000000000))
           (delivery-failed (route none) (reason "nobody home") (device "hh-22") (scanned-at 1767170000000000))
           (delivery-failed (route none) (reason "nobody home") (device "hh-22") (scanned-at 1767180000000000)))
    (when (fail-delivery (reason "refused") (device "hh-23") (scanned-at 1767175000000000)))
    (then (delivery-failed (route none) (reason "refused") (device "hh-23") (scanned-at 1767175000000000))
          (return-due (attempts 4))))

  (scenario "a fifth failed attempt is recorded without a second reaction"
    (doc "Relaxed, already past the bound and within the tolerance.")
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000))
           (delivery-failed (route none) (reason "a") (device "hh-22") (scanned-at 1767160000000000))
           (delivery-failed (route none) (reason "b") (device "hh-22") (scanned-at 1767170000000000))
           (delivery-failed (route none) (reason "c") (device "hh-22") (scanned-at 1767180000000000))
           (delivery-failed (route none) (reason "d") (device "hh-22") (scanned-at 1767190000000000)))
    (when (fail-delivery (reason "e") (device "hh-22") (scanned-at 1767200000000000)))
    (then (delivery-failed (route none) (reason "e") (device "hh-22") (scanned-at 1767200000000000))))

  (scenario "a sixth failed attempt is refused"
    (doc "Relaxed, beyond the tolerance.")
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000))
           (delivery-failed (route none) (reason "a") (device "hh-22") (scanned-at 1767160000000000))
           (delivery-failed (route none) (reason "b") (device "hh-22") (scanned-at 1767170000000000))
           (delivery-failed (route none) (reason "c") (device "hh-22") (scanned-at 1767180000000000))
           (delivery-failed (route none) (reason "d") (device "hh-22") (scanned-at 1767190000000000))
           (delivery-failed (route none) (reason "e") (device "hh-22") (scanned-at 1767200000000000)))
    (when (fail-delivery (reason "f") (device "hh-22") (scanned-at 1767210000000000)))
    (then (rejected at-most-three-attempts)))

  (scenario "a delivered parcel has no failed attempt"
    (given (registered (sender "acme") (recipient "ann") (destination "depot-north") (at 1767139200000000))
           (delivered (route none) (signed-by "ann") (device "hh-22") (scanned-at 1767200000000000)))
    (when (fail-delivery (reason "nobody home") (device "hh-22") (scanned-at 1767210000000000)))
    (then (rejected already-delivered)))

  (scenario "a route is planned"
    (when (plan (depot "depot-north") (planned-stops 2)))
    (then (planned (depot "depot-north") (planned-stops 2))))

  (scenario "a route is planned once"
    (given (planned (depot "depot-north") (planned-stops 2)))
    (when (plan (depot "depot-north") (planned-stops 3)))
    (then (rejected already-planned)))

  (scenario "a route has stops"
    (when (plan (depot "depot-north") (planned-stops 0)))
    (then (rejected no-stops)))

  (scenario "a load onto an unplanned route is refused"
    (when (add-stop (parcel "p-1")))
    (then (rejected unknown-route)))

  (scenario "an extra parcel on a full van is accepted and reported"
    (doc "Relaxed, within the tolerance, crossing the bound.")
    (given (planned (depot "depot-north") (planned-stops 1)) (stop-added (parcel "p-1")))
    (when (add-stop (parcel "p-2")))
    (then (stop-added (parcel "p-2")) (over-planned (stops 2))))

  (scenario "a van is not loaded far beyond its plan"
    (doc "Relaxed, beyond the tolerance.")
    (given (planned (depot "depot-north") (planned-stops 1))
           (stop-added (parcel "p-1")) (stop-added (parcel "p-2")) (stop-added (parcel "p-3"))
           (stop-added (parcel "p-4")) (stop-added (parcel "p-5")) (stop-added (parcel "p-6")))
    (when (add-stop (parcel "p-7")))
    (then (rejected within-planned-stops)))

  (scenario "a stop is completed"
    (given (planned (depot "depot-north") (planned-stops 1)) (stop-added (parcel "p-1")))
    (when (complete-stop (parcel "p-1") (delivered true)))
    (then (stop-done (parcel "p-1") (delivered true))))

  (scenario "a parcel that is not on the route does not complete a stop"
    (given (planned (depot "depot-north") (planned-stops 1)))
    (when (complete-stop (parcel "p-1") (delivered true)))
    (then (rejected not-on-route))))
