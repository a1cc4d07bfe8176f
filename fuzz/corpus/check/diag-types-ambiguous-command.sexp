(domain shop
  (id item-id)
  (aggregate item (key item-id) (event added) (command add (emit added)) (on added))
  (aggregate shelf (key item-id) (event added) (command add (emit added)) (on added))
  (scenario "add" (when add) (then added)))
