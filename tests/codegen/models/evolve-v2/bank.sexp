;; Version 2 of the small bank of ../evolve-v1: `opened` is now `created`, `deposited` has a memo and a
;; u64 count, the state counts deposits. Stores of version 1 open with the upcasters of
;; tests/codegen/tests/upcast.rs.
(domain bank
  (type money (decimal 2))
  (id account-id)
  (aggregate account
    (key account-id)
    (state
      (owner string "")
      (balance money 0)
      (deposits u64 0))
    (event created (owner string))
    (event deposited (amount money) (count u64) (memo string))
    (command open
      (params (owner string))
      (emit created owner))
    (command deposit
      (params (amount money) (count u64) (memo string))
      (require (> amount 0) non-positive "the amount must be positive")
      (emit deposited amount count memo))
    (on created (set owner owner))
    (on deposited
      (set balance (+ balance amount))
      (set deposits (+ deposits count))))
  (view deposits
    (key account-id)
    (column count count)
    (column total (sum money))
    (column last-memo (latest string))
    (on account/deposited (count) (total amount) (last-memo memo))))
