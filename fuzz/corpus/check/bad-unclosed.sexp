(domain x
  (aggregate a
    (key k)
