"""LevelDB storage through plyvel: key layout, atomic batches, durability, audit log."""
