// placeholder until the sync layer lands
