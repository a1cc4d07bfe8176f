;; The ledger: accounts with an overdraft limit, deposits, withdrawals, freezing, closing, transfers between
;; accounts and disbursements that pay one account's money out to many. docs/domains.md explains the model.
(domain ledger
  (doc "Accounts for a provider with many open accounts; balances are derived from events only.")

  (type money (decimal 2))
  (id account-id)
  (id transfer-id)
  (id disbursement-id)
  (enum account-status
    (new (doc "Not opened yet: every account starts here."))
    (open (doc "Takes deposits, withdrawals and transfers."))
    (frozen (doc "Held for review: money can neither come in nor go out."))
    (closed (doc "Closed for good, with a zero balance.")))
  (record payout
    (doc "One line of a disbursement: who receives how much.")
    (to account-id (doc "The receiving account."))
    (amount money (doc "What it receives.")))
  (enum disbursement-status
    (draft (doc "Being planned: payouts can still be added."))
    (funding (doc "Released: waiting for the payer's account to be debited with the total."))
    (paying (doc "Funded: the payouts are being credited, one event per recipient."))
    (completed (doc "Every payout was credited, or refunded to the payer."))
    (unfunded (doc "The payer's account refused the debit; nothing was paid.")))

  (aggregate account
    (doc "One customer account. The balance may dip below zero by at most the overdraft limit.")
    (key account-id)
    (state
      (status account-status 'new)
      (owner string "")
      (balance money 0 (doc "Derived from the events only: never set from outside."))
      (overdraft-limit money 0 (doc "How far below zero a small withdrawal may take the balance."))
      (frozen-reason (optional string)))

    (event opened (doc "The account was opened.") (owner string) (overdraft-limit money))
    (event deposited (doc "Money came in from outside the ledger.") (amount money))
    (event withdrawn (doc "Money went out of the ledger.") (amount money))
    (event overdrawn (doc "The balance crossed zero within the overdraft quota.") (balance money))
    (event limit-changed (doc "The overdraft limit was changed.") (overdraft-limit money))
    (event frozen (doc "The account was frozen.") (reason string))
    (event unfrozen (doc "The account was unfrozen."))
    (event closed (doc "The account was closed."))
    (event transfer-sent
      (doc "The first half of a transfer: the money left this account.")
      (transfer transfer-id) (to account-id) (amount money))
    (event transfer-received
      (doc "The second half of a transfer: the money arrived here.")
      (transfer transfer-id) (from account-id) (amount money))
    (event transfer-refunded
      (doc "The receiving account refused a transfer, so the money came back.")
      (transfer transfer-id) (amount money))
    (event disbursement-debited
      (doc "The total of a disbursement left this, the paying, account.")
      (disbursement disbursement-id) (amount money))
    (event disbursement-credited
      (doc "One payout of a disbursement arrived in this account.")
      (disbursement disbursement-id) (index u32) (from account-id) (amount money))
    (event disbursement-refunded
      (doc "A payout the receiving account refused came back to the payer.")
      (disbursement disbursement-id) (amount money))

    (command open
      (doc "Open a new account with an overdraft limit (zero for none).")
      (params (owner string) (overdraft-limit money))
      (require (= status 'new) already-open "the account is already open")
      (require (>= overdraft-limit 0) negative-limit "an overdraft limit cannot be negative")
      (emit opened owner overdraft-limit))

    (command deposit
      (doc "Money coming in from outside the ledger.")
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
      (doc "Change the overdraft limit. It is not lowered below the current overdraft: the invariant checks the new limit.")
      (params (overdraft-limit money))
      (require (= status 'open) not-open "the account is not open")
      (require (>= overdraft-limit 0) negative-limit "an overdraft limit cannot be negative")
      (emit limit-changed overdraft-limit))

    (command freeze
      (doc "Hold the account: no money moves until it is unfrozen.")
      (params (reason string))
      (require (= status 'open) not-open "the account is not open")
      (emit frozen reason))

    (command unfreeze
      (require (= status 'frozen) not-frozen "the account is not frozen")
      (emit unfrozen))

    (command close
      (doc "Close an account for good; only an empty account closes.")
      (require (!= status 'closed) already-closed "the account is already closed")
      (require (!= status 'new) not-open "the account is not open")
      (require (= balance 0) balance-not-zero "only an account with a zero balance can be closed")
      (emit closed))

    (command send-transfer
      (doc "The first step of a transfer: take the money out of this account. Never overdraws.")
      (params (transfer transfer-id) (to account-id) (amount money))
      (require (= status 'open) not-open "the account is not open")
      (require (> amount 0) non-positive-amount "the amount must be positive")
      (require (!= to id) same-account "a transfer needs two different accounts")
      (emit transfer-sent transfer to amount)
      (policy non-negative strict))

    (command receive-transfer
      (doc "The second step of a transfer, sent by the `transfer` process.")
      (params (transfer transfer-id) (from account-id) (amount money))
      (require (= status 'open) not-open "the account is not open")
      (emit transfer-received transfer from amount))

    (command refund-transfer
      (doc "Compensation: the receiving side refused, so the money comes back.")
      (params (transfer transfer-id) (amount money))
      (emit transfer-refunded transfer amount))

    (command debit-disbursement
      (doc "Take a disbursement's total out of the paying account, before any payout. Never overdraws.")
      (params (disbursement disbursement-id) (amount money))
      (require (= status 'open) not-open "the account is not open")
      (require (> amount 0) non-positive-amount "the amount must be positive")
      (emit disbursement-debited disbursement amount)
      (policy non-negative strict))

    (command credit-disbursement
      (doc "Credit one payout of a disbursement, sent by the `disbursement` process.")
      (params (disbursement disbursement-id) (index u32) (from account-id) (amount money))
      (require (= status 'open) not-open "the account is not open")
      (emit disbursement-credited disbursement index from amount))

    (command refund-disbursement
      (doc "Compensation: a payout was refused, so its amount comes back to the payer.")
      (params (disbursement disbursement-id) (amount money))
      (emit disbursement-refunded disbursement amount))

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
    (on disbursement-debited (set balance (- balance amount)))
    (on disbursement-credited (set balance (+ balance amount)))
    (on disbursement-refunded (set balance (+ balance amount)))

    (invariant non-negative
      (doc "The balance stays at or above zero; a relaxed command may overdraw within the limit.")
      (>= balance 0)
      (policy (relaxed
                (tolerance overdraft-limit)
                (on-violation (emit overdrawn (balance balance)))))))

  (aggregate disbursement
    (doc "A payment from one account to many: planned line by line, funded in one debit, paid out per line.")
    (key disbursement-id)
    (state
      (status disbursement-status 'draft)
      (payer (optional account-id) (doc "The paying account, once the disbursement is planned."))
      (payouts (map u32 payout) (doc "The lines, numbered from 0 in the order they were added."))
      (total money 0 (doc "The sum of the lines."))
      (next u32 0 (doc "The number of the next line to pay out."))
      (settled (set u32) (doc "The lines already credited or refunded."))
      (credited money 0 (doc "What the recipients received."))
      (refunded money 0 (doc "What came back to the payer from refused lines.")))

    (event planned (doc "The disbursement was started for a paying account.") (payer account-id))
    (event payout-added (doc "A line was added.") (index u32) (to account-id) (amount money))
    (event released (doc "Planning is over; the payer is to be debited with the total.") (payer account-id) (total money))
    (event unfunded (doc "The payer's account refused the debit."))
    (event payout-sent
      (doc "One line is being paid: the `disbursement` process credits the recipient.")
      (index u32) (payer account-id) (to account-id) (amount money))
    (event payout-confirmed (doc "The recipient was credited.") (index u32) (amount money))
    (event payout-refused
      (doc "The recipient refused the credit; the process refunds the payer.")
      (index u32) (payer account-id) (amount money))
    (event completed (doc "Every line is settled.") (credited money) (refunded money))

    (command plan
      (doc "Start a disbursement paid by one account.")
      (params (payer account-id))
      (require (is-none state.payer) already-planned "the disbursement is already planned")
      (emit planned payer))

    (command add-payout
      (doc "Add a line; lines are paid in the order they were added.")
      (params (to account-id) (amount money))
      (require (is-some payer) not-planned "the disbursement is not planned")
      (require (= status 'draft) not-draft "the disbursement was already released")
      (require (> amount 0) non-positive-amount "the amount must be positive")
      (require (!= (some to) payer) pays-the-payer "a disbursement cannot pay its own payer")
      (emit payout-added (index (as u32 (count payouts))) to amount))

    (command release
      (doc "Close the plan and ask for the payer's account to be debited with the total.")
      (require (= status 'draft) not-draft "the disbursement was already released")
      (require (not (is-empty payouts)) no-payouts "a disbursement needs at least one payout")
      (emit released (payer (unwrap-or payer "")) total))

    (command mark-unfunded
      (doc "Compensation: the payer's account refused the debit.")
      (require (= status 'funding) not-funding "the disbursement is not waiting for its funds")
      (emit unfunded))

    (command pay-out
      (doc "Pay line `index` if it is the next one; a repeated or early request, or one past the last line (even after completion), changes nothing.")
      (params (index u32))
      (require (or (= status 'funding) (= status 'paying) (= status 'completed)) not-funded "the disbursement is not funded")
      (when (= index next)
        (let ((line (get payouts index)))
          (when (is-some line)
            (let ((p (unwrap-or line (make payout (to "") (amount 0)))))
              (emit payout-sent index (payer (unwrap-or payer "")) (to p.to) (amount p.amount)))))))

    (command confirm-payout
      (doc "The recipient was credited; the last settled line completes the disbursement.")
      (params (index u32))
      (require (= status 'paying) not-paying "the disbursement is not paying out")
      (require (< index next) not-sent "this payout was not sent")
      (unless (contains settled index)
        (let ((p (unwrap-or (get payouts index) (make payout (to "") (amount 0)))))
          (emit payout-confirmed index (amount p.amount))
          (when (= (+ (count settled) 1) (count payouts))
            (emit completed (credited (+ credited p.amount)) refunded)))))

    (command refuse-payout
      (doc "Compensation: the recipient refused; the line's amount goes back to the payer.")
      (params (index u32))
      (require (= status 'paying) not-paying "the disbursement is not paying out")
      (require (< index next) not-sent "this payout was not sent")
      (unless (contains settled index)
        (let ((p (unwrap-or (get payouts index) (make payout (to "") (amount 0)))))
          (emit payout-refused index (payer (unwrap-or payer "")) (amount p.amount))
          (when (= (+ (count settled) 1) (count payouts))
            (emit completed credited (refunded (+ refunded p.amount)))))))

    (on planned (set payer (some payer)))
    (on payout-added
      (set payouts (put payouts index (make payout to amount)))
      (set total (+ total amount)))
    (on released (set status 'funding))
    (on unfunded (set status 'unfunded))
    (on payout-sent
      (set status 'paying)
      (set next (+ index 1)))
    (on payout-confirmed
      (set settled (insert settled index))
      (set credited (+ credited amount)))
    (on payout-refused
      (set settled (insert settled index))
      (set refunded (+ refunded amount)))
    (on completed (set status 'completed))

    (invariant pays-out-at-most-the-total
      (doc "The recipients and the refunds together never get more than the payer was debited.")
      (<= (+ credited refunded) total)))

  (process transfer
    (doc "Withdraw from one account, then deposit into the other; refund when the deposit is refused.")
    (on account/transfer-sent
      (send account to receive-transfer
        (transfer transfer) (from id) amount
        (on-rejected (send account id refund-transfer (transfer transfer) amount)))))

  (process disbursement
    (doc "Debit the payer once, then credit the lines one event at a time; refund the lines that are refused.")
    (on disbursement/released
      (send account payer debit-disbursement (disbursement id) (amount total)
        (on-rejected (send disbursement id mark-unfunded))))
    (on account/disbursement-debited
      (send disbursement disbursement pay-out (index 0)))
    (on disbursement/payout-sent
      (send account to credit-disbursement (disbursement id) index (from payer) amount
        (on-rejected (send disbursement id refuse-payout index)))
      (send disbursement id pay-out (index (+ index 1))))
    (on account/disbursement-credited
      (send disbursement disbursement confirm-payout index))
    (on disbursement/payout-refused
      (send account payer refund-disbursement (disbursement id) amount)))

  (view account-activity
    (doc "Per account: how many deposits and withdrawals, and the money that moved.")
    (key account-id)
    (column deposits count)
    (column withdrawals count)
    (column total-in (sum money))
    (column total-out (sum money))
    (column last-owner (latest string))
    (column overdrafts count (doc "How often the balance crossed zero."))
    (on account/opened (last-owner owner))
    (on account/deposited (deposits) (total-in amount))
    (on account/withdrawn (withdrawals) (total-out amount))
    (on account/transfer-received (total-in amount))
    (on account/transfer-sent (total-out amount))
    (on account/transfer-refunded (total-in amount))
    (on account/disbursement-credited (total-in amount))
    (on account/disbursement-debited (total-out amount))
    (on account/disbursement-refunded (total-in amount))
    (on account/overdrawn (overdrafts)))

  (view disbursement-progress
    (doc "Per disbursement: how many lines were paid or refused, and the money on each side.")
    (key disbursement-id)
    (column lines count)
    (column confirmed count)
    (column refused count)
    (column credited (sum money))
    (column refunded (sum money))
    (column finished-at (latest timestamp))
    (on disbursement/payout-added (lines))
    (on disbursement/payout-confirmed (confirmed) (credited amount))
    (on disbursement/payout-refused (refused) (refunded amount))
    (on disbursement/completed (finished-at (occurred-at))))

  ;; Accounts: accepted paths.

  (scenario "an account opens"
    (when (open (owner "ann") (overdraft-limit 100)))
    (then (opened (owner "ann") (overdraft-limit 100))))

  (scenario "a deposit is recorded"
    (given (opened (owner "ann") (overdraft-limit 0)))
    (when (deposit (amount 25.50)))
    (then (deposited (amount 25.50))))

  (scenario "a withdrawal within the balance does not overdraw"
    (given (opened (owner "ann") (overdraft-limit 100)) (deposited (amount 80)))
    (when (withdraw (amount 80)))
    (then (withdrawn (amount 80))))

  (scenario "a frozen account is unfrozen"
    (given (opened (owner "ann") (overdraft-limit 0)) (frozen (reason "audit")))
    (when unfreeze)
    (then unfrozen))

  (scenario "an empty account closes"
    (given (opened (owner "ann") (overdraft-limit 0)) (deposited (amount 5)) (withdrawn (amount 5)))
    (when close)
    (then closed))

  (scenario "a transfer takes the money out of the sending account"
    (given (opened (owner "ann") (overdraft-limit 0)) (deposited (amount 50)))
    (when (send-transfer (transfer "t-1") (to "acc-2") (amount 30)))
    (then (transfer-sent (transfer "t-1") (to "acc-2") (amount 30))))

  ;; Accounts: the overdraft policy in all its cases.

  (scenario "a small withdrawal may overdraw within the limit"
    (doc "Relaxed, within the tolerance, crossing zero: accepted and reported.")
    (given (opened (owner "ann") (overdraft-limit 100)) (deposited (amount 20)))
    (when (withdraw (amount 50)))
    (then (withdrawn (amount 50)) (overdrawn (balance -30))))

  (scenario "an overdrawn account reports the overdraft only once"
    (doc "Relaxed, already past zero and still within the tolerance: accepted, no second `overdrawn`.")
    (given (opened (owner "ann") (overdraft-limit 100)) (withdrawn (amount 30)))
    (when (withdraw (amount 20)))
    (then (withdrawn (amount 20))))

  (scenario "a withdrawal beyond the overdraft limit is rejected"
    (doc "Relaxed, beyond the tolerance: rejected with the invariant.")
    (given (opened (owner "ann") (overdraft-limit 100)))
    (when (withdraw (amount 150)))
    (then (rejected non-negative)))

  (scenario "a large withdrawal never overdraws"
    (doc "Strict for amounts over 1000, whatever the limit.")
    (given (opened (owner "ann") (overdraft-limit 5000)) (deposited (amount 1000)))
    (when (withdraw (amount 1500)))
    (then (rejected non-negative)))

  (scenario "a transfer cannot overdraw"
    (doc "Transfers are strict: the sending side never goes below zero.")
    (given (opened (owner "ann") (overdraft-limit 100)))
    (when (send-transfer (transfer "t-1") (to "acc-2") (amount 10)))
    (then (rejected non-negative)))

  (scenario "a limit is lowered down to the current overdraft"
    (given (opened (owner "ann") (overdraft-limit 100)) (withdrawn (amount 80)))
    (when (change-limit (overdraft-limit 80)))
    (then (limit-changed (overdraft-limit 80))))

  (scenario "a limit is not lowered below the current overdraft"
    (doc "The relaxed policy's tolerance is the new limit, so the account would be beyond it.")
    (given (opened (owner "ann") (overdraft-limit 100)) (withdrawn (amount 80)))
    (when (change-limit (overdraft-limit 10)))
    (then (rejected non-negative)))

  ;; Accounts: every rejection.

  (scenario "an account opens once"
    (given (opened (owner "ann") (overdraft-limit 0)))
    (when (open (owner "bob") (overdraft-limit 0)))
    (then (rejected already-open)))

  (scenario "an overdraft limit cannot be negative"
    (given (opened (owner "ann") (overdraft-limit 0)))
    (when (change-limit (overdraft-limit -1)))
    (then (rejected negative-limit)))

  (scenario "a deposit into an account that is not open is rejected"
    (when (deposit (amount 10)))
    (then (rejected not-open)))

  (scenario "a deposit must be positive"
    (given (opened (owner "ann") (overdraft-limit 0)))
    (when (deposit (amount 0)))
    (then (rejected non-positive-amount)))

  (scenario "a frozen account refuses withdrawals"
    (given (opened (owner "ann") (overdraft-limit 0)) (frozen (reason "audit")))
    (when (withdraw (amount 1)))
    (then (rejected not-open)))

  (scenario "an open account cannot be unfrozen"
    (given (opened (owner "ann") (overdraft-limit 0)))
    (when unfreeze)
    (then (rejected not-frozen)))

  (scenario "only an empty account closes"
    (given (opened (owner "ann") (overdraft-limit 0)) (deposited (amount 1)))
    (when close)
    (then (rejected balance-not-zero)))

  (scenario "a closed account cannot be closed again"
    (given (opened (owner "ann") (overdraft-limit 0)) (closed))
    (when close)
    (then (rejected already-closed)))

  (scenario "a transfer to the same account is rejected"
    (doc "Scenarios run against the instance whose key is \"scenario\".")
    (given (opened (owner "ann") (overdraft-limit 0)) (deposited (amount 10)))
    (when (send-transfer (transfer "t-1") (to "scenario") (amount 5)))
    (then (rejected same-account)))

  (scenario "a closed account refuses an incoming transfer"
    (doc "The `transfer` process then refunds the sender.")
    (given (opened (owner "bob") (overdraft-limit 0)) (closed))
    (when (receive-transfer (transfer "t-1") (from "acc-2") (amount 5)))
    (then (rejected not-open)))

  ;; Disbursements.

  (scenario "a disbursement debits the payer once, strictly"
    (aggregate account)
    (given (opened (owner "payroll") (overdraft-limit 1000)) (deposited (amount 300)))
    (when (debit-disbursement (disbursement "d-1") (amount 500)))
    (then (rejected non-negative)))

  (scenario "a funded payer is debited with the total"
    (aggregate account)
    (given (opened (owner "payroll") (overdraft-limit 0)) (deposited (amount 300)))
    (when (debit-disbursement (disbursement "d-1") (amount 300)))
    (then (disbursement-debited (disbursement "d-1") (amount 300))))

  (scenario "payout lines are numbered in order"
    (given (planned (payer "payroll")) (payout-added (index 0) (to "ann") (amount 100)))
    (when (add-payout (to "bob") (amount 50)))
    (then (payout-added (index 1) (to "bob") (amount 50))))

  (scenario "a payout line needs a planned disbursement"
    (when (add-payout (to "bob") (amount 50)))
    (then (rejected not-planned)))

  (scenario "a disbursement is planned once"
    (given (planned (payer "payroll")))
    (when (plan (payer "treasury")))
    (then (rejected already-planned)))

  (scenario "a disbursement cannot pay its own payer"
    (given (planned (payer "payroll")))
    (when (add-payout (to "payroll") (amount 50)))
    (then (rejected pays-the-payer)))

  (scenario "a payout line must be positive"
    (given (planned (payer "payroll")))
    (when (add-payout (to "ann") (amount 0)))
    (then (rejected non-positive-amount)))

  (scenario "a released disbursement takes no more lines"
    (given (planned (payer "payroll"))
           (payout-added (index 0) (to "ann") (amount 100))
           (released (payer "payroll") (total 100)))
    (when (add-payout (to "bob") (amount 50)))
    (then (rejected not-draft)))

  (scenario "releasing asks for the total"
    (given (planned (payer "payroll"))
           (payout-added (index 0) (to "ann") (amount 100))
           (payout-added (index 1) (to "bob") (amount 50.25)))
    (when release)
    (then (released (payer "payroll") (total 150.25))))

  (scenario "an empty disbursement cannot be released"
    (given (planned (payer "payroll")))
    (when release)
    (then (rejected no-payouts)))

  (scenario "a refused debit leaves the disbursement unfunded"
    (given (planned (payer "payroll")) (payout-added (index 0) (to "ann") (amount 100))
           (released (payer "payroll") (total 100)))
    (when mark-unfunded)
    (then unfunded))

  (scenario "only a disbursement waiting for funds can be unfunded"
    (given (planned (payer "payroll")))
    (when mark-unfunded)
    (then (rejected not-funding)))

  (scenario "the first line is paid once the payer is debited"
    (given (planned (payer "payroll"))
           (payout-added (index 0) (to "ann") (amount 100))
           (payout-added (index 1) (to "bob") (amount 50))
           (released (payer "payroll") (total 150)))
    (when (pay-out (index 0)))
    (then (payout-sent (index 0) (payer "payroll") (to "ann") (amount 100))))

  (scenario "paying past the last line does nothing"
    (doc "The chain of `pay-out` requests ends here: the fan-out's loop terminates.")
    (given (planned (payer "payroll"))
           (payout-added (index 0) (to "ann") (amount 100))
           (released (payer "payroll") (total 100))
           (payout-sent (index 0) (payer "payroll") (to "ann") (amount 100)))
    (when (pay-out (index 1)))
    (then))

  (scenario "the end of the chain may arrive after completion"
    (doc "The last line's credit can complete the disbursement before the request for the line after it arrives.")
    (given (planned (payer "payroll"))
           (payout-added (index 0) (to "ann") (amount 100))
           (released (payer "payroll") (total 100))
           (payout-sent (index 0) (payer "payroll") (to "ann") (amount 100))
           (payout-confirmed (index 0) (amount 100))
           (completed (credited 100) (refunded 0)))
    (when (pay-out (index 1)))
    (then))

  (scenario "a disbursement in draft pays nothing"
    (given (planned (payer "payroll")) (payout-added (index 0) (to "ann") (amount 100)))
    (when (pay-out (index 0)))
    (then (rejected not-funded)))

  (scenario "the last confirmed line completes the disbursement"
    (given (planned (payer "payroll"))
           (payout-added (index 0) (to "ann") (amount 100))
           (payout-added (index 1) (to "bob") (amount 50))
           (released (payer "payroll") (total 150))
           (payout-sent (index 0) (payer "payroll") (to "ann") (amount 100))
           (payout-sent (index 1) (payer "payroll") (to "bob") (amount 50))
           (payout-refused (index 1) (payer "payroll") (amount 50)))
    (when (confirm-payout (index 0)))
    (then (payout-confirmed (index 0) (amount 100)) (completed (credited 100) (refunded 50))))

  (scenario "a refused line is refunded"
    (given (planned (payer "payroll"))
           (payout-added (index 0) (to "ann") (amount 100))
           (payout-added (index 1) (to "bob") (amount 50))
           (released (payer "payroll") (total 150))
           (payout-sent (index 0) (payer "payroll") (to "ann") (amount 100)))
    (when (refuse-payout (index 0)))
    (then (payout-refused (index 0) (payer "payroll") (amount 100))))

  (scenario "a line that was not sent cannot be settled"
    (given (planned (payer "payroll"))
           (payout-added (index 0) (to "ann") (amount 100))
           (payout-added (index 1) (to "bob") (amount 50))
           (released (payer "payroll") (total 150))
           (payout-sent (index 0) (payer "payroll") (to "ann") (amount 100)))
    (when (confirm-payout (index 1)))
    (then (rejected not-sent)))

  (scenario "a disbursement that is not paying settles nothing"
    (given (planned (payer "payroll")))
    (when (refuse-payout (index 0)))
    (then (rejected not-paying)))

  (scenario "a line is settled once"
    (given (planned (payer "payroll"))
           (payout-added (index 0) (to "ann") (amount 100))
           (payout-added (index 1) (to "bob") (amount 50))
           (released (payer "payroll") (total 150))
           (payout-sent (index 0) (payer "payroll") (to "ann") (amount 100))
           (payout-confirmed (index 0) (amount 100)))
    (when (confirm-payout (index 0)))
    (then))

  (scenario "a line credited twice over is caught by the invariant"
    (doc "A corrupted history (a confirmation of a line that does not exist) cannot make the disbursement pay out more than its total.")
    (given (planned (payer "payroll"))
           (payout-added (index 0) (to "ann") (amount 100))
           (released (payer "payroll") (total 100))
           (payout-sent (index 0) (payer "payroll") (to "ann") (amount 100))
           (payout-confirmed (index 7) (amount 100)))
    (when (confirm-payout (index 0)))
    (then (rejected pays-out-at-most-the-total))))
