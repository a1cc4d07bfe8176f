(domain shop
  (doc shop-things))
