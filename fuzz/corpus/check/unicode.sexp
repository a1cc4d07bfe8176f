(domain ünïcödé (doc "日本語 🐜 \x1F41C; é") (id 🐜-id) (enum farbe (grün (doc "ü")) blau) ;; комментарий ́
 (aggregate 蟻 (key 🐜-id)))
