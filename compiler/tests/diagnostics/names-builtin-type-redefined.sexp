(domain shop
  (type string u64))
