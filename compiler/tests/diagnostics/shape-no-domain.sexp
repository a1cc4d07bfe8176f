(aggregate item (key string))
