;; Version 1 of a small bank, for the upcaster test (tests/codegen/tests/upcast.rs); version 2 is in
;; ../evolve-v2: `opened` is renamed `created`, `deposited` gains a memo and widens its count to u64.
(domain bank
  (type money (decimal 2))
  (id account-id)
  (aggregate account
    (key account-id)
    (state
      (owner string "")
      (balance money 0))
    (event opened (owner string))
    (event deposited (amount money) (count u32))
    (command open
      (params (owner string))
      (emit opened owner))
    (command deposit
      (params (amount money) (count u32))
      (require (> amount 0) non-positive "the amount must be positive")
      (emit deposited amount count))
    (on opened (set owner owner))
    (on deposited (set balance (+ balance amount))))
  (view deposits
    (key account-id)
    (column count count)
    (column total (sum money))
    (on account/deposited (count) (total amount))))
