;; The smallest useful aggregate: a counter with a strict upper bound.
(domain counter
  (doc "A counter that never exceeds its limit.")
  (id counter-id)
  (aggregate counter
    (key counter-id)
    (state
      (value u32 0)
      (limit u32 10))
    (event incremented (by u32))
    (event reset)
    (command increment
      (params (by u32))
      (require (> by 0) zero-step "the step must be positive")
      (emit incremented by))
    (command reset
      (emit reset))
    (on incremented (set value (+ value by)))
    (on reset (set value 0))
    (invariant within-limit
      (doc "The counter stays at or below its limit.")
      (<= value limit)))
  (scenario "a counter counts"
    (given (incremented (by 2)))
    (when (increment (by 3)))
    (then (incremented (by 3))))
  (scenario "a counter stops at its limit"
    (given (incremented (by 9)))
    (when (increment (by 2)))
    (then (rejected within-limit))))
