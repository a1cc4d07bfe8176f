;; A misspelt declaration: every use of the type it should have declared is unknown, and the first one
;; is reported with the count of the others.
(domain shop
  (id item-idd)
  (aggregate item
    (key item-id)
    (state (replaced-by (optional item-id) none))
    (event replaced (by item-id))
    (command replace (params (by item-id)) (emit replaced by))
    (on replaced (set replaced-by (some by)))))
