(domain x (type t #\a) (id #:kw) (enum e (a . b)) `(q ,u ,@v))
