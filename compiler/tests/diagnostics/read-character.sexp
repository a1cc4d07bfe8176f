(domain shop
  (doc #\a))
