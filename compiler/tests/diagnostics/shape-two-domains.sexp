(domain shop)
(domain other)
