(domain shop
  (agregate item (key string)))
