(domain "shop")
