(domain shop
  (include "parts/items.sexp"))
