;; Model names that the generated code already uses for its own items.
(domain shop
  (id command)
  (record shop (name string))
  (aggregate event
    (key command)
    (state (n u32 0)))
  (aggregate views
    (key command)
    (state (n u32 0))))
