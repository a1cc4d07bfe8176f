(domain tiny
  (id thing-id)
  (aggregate thing
    (key thing-id)
    (state (n u32 0))
    (event bumped (by u32))
    (command bump (params (by u32)) (require (> by 0) zero "must be positive") (emit bumped by))
    (on bumped (set n (+ n by)))))
