(domain shop
  (type prices (vector u32)))
