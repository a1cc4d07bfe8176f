(domain shop
  (id ItemId))
