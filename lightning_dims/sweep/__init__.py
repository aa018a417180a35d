"""W&B sweep files, run offline: grid expansion, run ids, sharding."""
