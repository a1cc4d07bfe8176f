;; An extern command: the Rust side decides, the model declares the contract.
(domain payments
  (type money (decimal 2))
  (id payment-id)
  (enum payment-status new authorized declined)
  (aggregate payment
    (key payment-id)
    (state
      (status payment-status 'new)
      (amount money 0))
    (event authorized (amount money) (reference string))
    (event declined (reason string))
    (command authorize
      (doc "Asks the card processor; a Rust function decides.")
      (params (amount money) (card-token string))
      (extern)
      (require (= status 'new) already-processed "the payment was already processed")
      (emits authorized declined)
      (rejects processor-unavailable "the card processor cannot be reached"))
    (on authorized
      (set status 'authorized)
      (set amount amount))
    (on declined (set status 'declined))))
