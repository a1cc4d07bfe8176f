(domain shop
  (id item-id)
  (record line (qty u32))
  (aggregate item (key item-id) (state (last line (make line (qty 0))))
    (event added (line line))
    (command add (params (line line)) (require (> line.qtty 0) empty "empty") (emit added line))
    (on added (set last line))))
