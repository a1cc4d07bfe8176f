(domain shop
  (aggregate flag (key bool)))
