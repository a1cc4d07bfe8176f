(domain shop
  (type money (decimal 40)))
