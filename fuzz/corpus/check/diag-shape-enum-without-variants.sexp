(domain shop
  (enum color))
