// placeholder until the format layer lands
