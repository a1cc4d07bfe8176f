;; A misspelt type: its field is dropped, and no use of the field (in an invariant and its relaxed
;; policy, a require, a set, a record built in a let, a scenario expecting the rejections it would bring)
;; is reported again.
(domain bank
  (type money (decimal 2))
  (id account-id)
  (record line (to account-id) (amount mony))
  (aggregate account
    (key account-id)
    (state (balance monee 0) (limit money 0))
    (event deposited (amount money))
    (event withdrawn (amount money))
    (event overdrawn)
    (command deposit (params (amount money))
      (let ((l (make line (to "a") (amount amount))))
        (emit deposited (amount l.amount))))
    (command withdraw (params (amount money))
      (require (>= balance amount) too-much "not enough money")
      (emit withdrawn amount))
    (on deposited (set balance (+ balance amount)))
    (on withdrawn (set balance (- balance amount)))
    (on overdrawn)
    (invariant non-negative
      (>= balance 0)
      (policy (relaxed (tolerance limit) (on-violation (emit overdrawn))))))
  (scenario "too much"
    (when (withdraw (amount 5)))
    (then (rejected too-much)))
  (scenario "below zero"
    (when (withdraw (amount 5)))
    (then (rejected non-negative))))
