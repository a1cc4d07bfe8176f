(domain shop
  (record line (qty int)))
