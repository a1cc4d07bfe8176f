(domain shop
  (include "a.sexp" "b.sexp"))
