"""One module per ``lightning-dims`` subcommand, each with ``main(argv) -> int``."""
