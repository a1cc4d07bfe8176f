;; nothing here
#| block |#
