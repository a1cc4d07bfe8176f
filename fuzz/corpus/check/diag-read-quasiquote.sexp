(domain shop
  (enum color `red))
