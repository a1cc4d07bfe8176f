(domain x (doc "\x110000;"))
(domain y (doc "\xZZ;"))
