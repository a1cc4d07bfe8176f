(domain shop
  (enum color #(red green)))
