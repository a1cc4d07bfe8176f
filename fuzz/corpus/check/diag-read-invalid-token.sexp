(domain shop
  (id item-id)
  #<unreadable>)
