(domain shop
  (doc "tab\qhere"))
