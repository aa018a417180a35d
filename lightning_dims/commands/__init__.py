"""One module per ``lightning-dims`` subcommand, each with ``main(argv) -> int``."""

__all__: list[str] = []  # a namespace of modules: import what you need from them
