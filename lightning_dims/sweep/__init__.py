"""W&B sweep files, run offline: grid expansion, run ids, sharding."""

__all__: list[str] = []  # a namespace of modules: import what you need from them
