(domain shop
  (enum color red green red))
