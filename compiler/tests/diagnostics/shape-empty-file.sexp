;; nothing but a comment
