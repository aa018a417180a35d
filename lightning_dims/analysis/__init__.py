
__all__: list[str] = []  # a namespace of modules: import what you need from them
