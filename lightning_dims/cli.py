"""The ``lightning-dims`` command: a thin dispatcher to one module per subcommand.

Each subcommand lives in its own module with a ``main(argv) -> int`` function and is imported
only when used, so ``lightning-dims measure`` starts without importing Lightning or W&B.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "measure": ("lightning_dims.commands.measure", "K_F and intrinsic dimension of a dataset"),
    "datasets": ("lightning_dims.commands.datasets", "the dataset registry and which datasets are present locally"),
    "fit": ("lightning_dims.commands.fit", "train one architecture on one dataset task (LightningCLI)"),
    "sweep": ("lightning_dims.commands.sweep", "run a W&B grid sweep file locally (resumable, shardable)"),
    "report": ("lightning_dims.commands.report", "report.md, figures and fits.json from results records"),
    "demo": ("lightning_dims.commands.demo", "the whole pipeline on embedded data, on a CPU, in minutes"),
    "prepare": ("lightning_dims.commands.prepare", "a radiology dataset from its official download: images + manifest.csv"),
}
"""name -> (module with ``main(argv)``, one-line help). Add a line here to add a subcommand."""


def usage() -> str:
    lines = ["usage: lightning-dims SUBCOMMAND [options]   (lightning-dims SUBCOMMAND --help)", "", "subcommands:"]
    lines += [f"  {name:<10} {help_text}" for name, (_, help_text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        from lightning_dims import __version__

        print(__version__)
        return 0
    name = args[0]
    if name not in SUBCOMMANDS:
        print(f"lightning-dims: unknown subcommand {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
