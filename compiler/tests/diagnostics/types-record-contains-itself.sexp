(domain shop
  (record node (next node)))
