(domain x (type t #(1 2 3)) (id #u8(1 2)))
