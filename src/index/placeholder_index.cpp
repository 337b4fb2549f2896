// placeholder until the index layer lands
