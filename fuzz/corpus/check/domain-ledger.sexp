;; The ledger: accounts with an overdraft limit, deposits, withdrawals, freezing, closing and transfers.
;; The full seed domain (disbursements, workloads) grows from this one in its own issue.
(domain ledger
  (doc "Accounts for a provider with many open accounts; balances are derived from events only.")

  (type money (decimal 2))
  (id account-id)
  (id transfer-id)
  (enum account-status
    (new (doc "Not opened yet: every account starts here."))
    open
    frozen
    closed)

  (aggregate account
    (doc "One customer account. The balance may dip below zero by at most the overdraft limit.")
    (key account-id)
    (state
      (status account-status 'new)
      (owner string "")
      (balance money 0)
      (overdraft-limit money 0)
      (frozen-reason (optional string)))

    (event opened (owner string) (overdraft-limit money))
    (event deposited (amount money))
    (event withdrawn (amount money))
    (event overdrawn (doc "The balance crossed zero within the overdraft quota.") (balance money))
    (event limit-changed (overdraft-limit money))
    (event frozen (reason string))
    (event unfrozen)
    (event closed)
    (event transfer-sent (transfer transfer-id) (to account-id) (amount money))
    (event transfer-received (transfer transfer-id) (from account-id) (amount money))
    (event transfer-refunded (transfer transfer-id) (amount money))

    (command open
      (params (owner string) (overdraft-limit money))
      (require (= status 'new) already-open "the account is already open")
      (require (>= overdraft-limit 0) negative-limit "an overdraft limit cannot be negative")
      (emit opened owner overdraft-limit))

    (command deposit
      (params (amount money))
      (require (= status 'open) not-open "the account is not open")
      (require (> amount 0) non-positive-amount "the amount must be positive")
      (emit deposited amount))

    (command withdraw
      (doc "Small withdrawals may overdraw within the limit; large ones never go below zero.")
      (params (amount money))
      (require (= status 'open) not-open "the account is not open")
      (require (> amount 0) non-positive-amount "the amount must be positive")
      (emit withdrawn amount)
      (policy non-negative (if (> amount 1000) strict relaxed)))

    (command change-limit
      (params (overdraft-limit money))
      (require (= status 'open) not-open "the account is not open")
      (require (>= overdraft-limit 0) negative-limit "an overdraft limit cannot be negative")
      (emit limit-changed overdraft-limit))

    (command freeze
      (params (reason string))
      (require (= status 'open) not-open "the account is not open")
      (emit frozen reason))

    (command unfreeze
      (require (= status 'frozen) not-frozen "the account is not frozen")
      (emit unfrozen))

    (command close
      (require (!= status 'closed) already-closed "the account is already closed")
      (require (!= status 'new) not-open "the account is not open")
      (require (= balance 0) balance-not-zero "only an account with a zero balance can be closed")
      (emit closed))

    (command send-transfer
      (doc "The first step of a transfer: take the money out of this account.")
      (params (transfer transfer-id) (to account-id) (amount money))
      (require (= status 'open) not-open "the account is not open")
      (require (> amount 0) non-positive-amount "the amount must be positive")
      (require (!= to id) same-account "a transfer needs two different accounts")
      (emit transfer-sent transfer to amount)
      (policy non-negative strict))

    (command receive-transfer
      (params (transfer transfer-id) (from account-id) (amount money))
      (require (= status 'open) not-open "the account is not open")
      (emit transfer-received transfer from amount))

    (command refund-transfer
      (doc "Compensation: the receiving side refused, so the money comes back.")
      (params (transfer transfer-id) (amount money))
      (emit transfer-refunded transfer amount))

    (on opened
      (set status 'open)
      (set owner owner)
      (set overdraft-limit overdraft-limit))
    (on deposited (set balance (+ balance amount)))
    (on withdrawn (set balance (- balance amount)))
    (on overdrawn)
    (on limit-changed (set overdraft-limit overdraft-limit))
    (on frozen
      (set status 'frozen)
      (set frozen-reason (some reason)))
    (on unfrozen
      (set status 'open)
      (set frozen-reason none))
    (on closed (set status 'closed))
    (on transfer-sent (set balance (- balance amount)))
    (on transfer-received (set balance (+ balance amount)))
    (on transfer-refunded (set balance (+ balance amount)))

    (invariant non-negative
      (doc "The balance stays at or above zero; a relaxed command may overdraw within the limit.")
      (>= balance 0)
      (policy (relaxed
                (tolerance overdraft-limit)
                (on-violation (emit overdrawn (balance balance)))))))

  (process transfer
    (doc "Withdraw from one account, then deposit into the other; refund when the deposit is refused.")
    (on account/transfer-sent
      (send account to receive-transfer
        (transfer transfer) (from id) amount
        (on-rejected (send account id refund-transfer (transfer transfer) amount)))))

  (view account-activity
    (doc "Per account: how many deposits and withdrawals, and the money that moved.")
    (key account-id)
    (column deposits count)
    (column withdrawals count)
    (column total-in (sum money))
    (column total-out (sum money))
    (column last-owner (latest string))
    (on account/opened (last-owner owner))
    (on account/deposited (deposits) (total-in amount))
    (on account/withdrawn (withdrawals) (total-out amount)))

  (scenario "a deposit is recorded"
    (given (opened (owner "ann") (overdraft-limit 0)))
    (when (deposit (amount 25.50)))
    (then (deposited (amount 25.50))))

  (scenario "a deposit into an account that is not open is rejected"
    (when (deposit (amount 10)))
    (then (rejected not-open)))

  (scenario "a small withdrawal may overdraw within the limit"
    (given (opened (owner "ann") (overdraft-limit 100)) (deposited (amount 20)))
    (when (withdraw (amount 50)))
    (then (withdrawn (amount 50)) (overdrawn (balance -30))))

  (scenario "a withdrawal beyond the overdraft limit is rejected"
    (given (opened (owner "ann") (overdraft-limit 100)))
    (when (withdraw (amount 150)))
    (then (rejected non-negative)))

  (scenario "a large withdrawal never overdraws"
    (given (opened (owner "ann") (overdraft-limit 5000)) (deposited (amount 1000)))
    (when (withdraw (amount 1500)))
    (then (rejected non-negative)))

  (scenario "a frozen account refuses withdrawals"
    (given (opened (owner "ann") (overdraft-limit 0)) (frozen (reason "audit")))
    (when (withdraw (amount 1)))
    (then (rejected not-open)))

  (scenario "only an empty account closes"
    (given (opened (owner "ann") (overdraft-limit 0)) (deposited (amount 1)))
    (when close)
    (then (rejected balance-not-zero)))

  (scenario "a transfer cannot overdraw"
    (given (opened (owner "ann") (overdraft-limit 100)))
    (when (send-transfer (transfer "t-1") (to "acc-2") (amount 10)))
    (then (rejected non-negative))))
