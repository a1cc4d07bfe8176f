(domain x
	(id i)
	(aggregate a	(key i)
		(state (n u8 "é
x"))))
