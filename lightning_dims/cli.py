"""The ``lightning-dims`` command: a thin dispatcher to one module per subcommand.

Each subcommand lives in its own module with a ``main(argv) -> int`` function (or the function
named after a colon, ``module:function``) and is imported only when used, so ``lightning-dims
measure`` starts without importing Lightning or W&B.
"""

from __future__ import annotations

import functools
import importlib
import signal
import sys
from collections.abc import Callable

from lightning_dims.compat import is_parser_error, parser_error_line
from lightning_dims.errors import LightningDimsError, missing_extra

__all__ = ["PRECHECKS", "SUBCOMMANDS", "main", "precheck", "usage", "user_errors"]

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "measure": ("lightning_dims.commands.measure", "K_F and intrinsic dimension of a dataset"),
    "datasets": ("lightning_dims.commands.datasets", "the dataset registry and which datasets are present locally"),
    "fit": ("lightning_dims.commands.fit", "train one architecture on one dataset task (LightningCLI)"),
    "validate": ("lightning_dims.commands.evaluate:validate", "a fit checkpoint on its run's validation split"),
    "test": ("lightning_dims.commands.evaluate:test", "a fit checkpoint on its run's test split"),
    "sweep": ("lightning_dims.commands.sweep", "run a W&B grid sweep file locally (resumable, shardable)"),
    "agent": ("lightning_dims.commands.agent", "a W&B sweep agent whose runs fork from a warm worker"),
    "report": ("lightning_dims.commands.report", "report.md, figures and fits.json from results records"),
    "plan": ("lightning_dims.commands.plan", "the training size a target loss needs, from a task's runs or K_F and d_data"),
    "dashboard": ("lightning_dims.commands.dashboard", "a W&B workspace and report of the paper's figures"),
    "demo": ("lightning_dims.commands.demo", "the paper's claims put to a test on embedded data, on a CPU, in minutes"),
    "prepare": ("lightning_dims.commands.prepare", "a radiology dataset from its official download: images + manifest.csv"),
}
"""name -> (module with ``main(argv)``, or ``module:function``; one-line help). Add a line here to add a subcommand."""

PRECHECKS: dict[str, str] = {
    "fit": "lightning_dims.training.precheck:check_fit_args",
    "validate": "lightning_dims.training.precheck:check_evaluate_args",
    "test": "lightning_dims.training.precheck:check_evaluate_args",
}
"""name -> ``module:function(args)`` run before the subcommand's module is imported: it raises a
:class:`LightningDimsError` for a command line that would fail, before torch, Lightning or W&B load."""


def user_errors(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a subcommand's ``main``: a :class:`LightningDimsError` (or a parser error) becomes one line
    ``<prog>: error: <message>`` on stderr and exit status 2; anything else keeps its traceback."""

    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def wrapped(*args, **kwargs) -> int:
            try:
                return main(*args, **kwargs)
            except Exception as error:
                if isinstance(error, ModuleNotFoundError) and (extra := missing_extra(error)) is not None:
                    error = extra  # a package of an uninstalled extra: one line naming the pip install
                if not (isinstance(error, LightningDimsError) or is_parser_error(error)):
                    raise
                print(f"{prog}: error: {parser_error_line(error)}", file=sys.stderr)
                return 2

        return wrapped

    return decorate


def usage() -> str:
    lines = ["usage: lightning-dims SUBCOMMAND [options]   (lightning-dims SUBCOMMAND --help)", "", "subcommands:"]
    lines += [f"  {name:<10} {help_text}" for name, (_, help_text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def _function(reference: str) -> Callable:
    module_name, _, function = reference.partition(":")
    return getattr(importlib.import_module(module_name), function or "main")


def precheck(name: str, args: list[str]) -> int | None:
    """Run the subcommand's :data:`PRECHECKS` entry: an exit status when it answered (a refusal: 2;
    ``fit --help`` from the stored text: 0), None when the subcommand should run."""
    if name == "fit" and args in (["-h"], ["--help"]):
        from lightning_dims.training.precheck import fit_help

        print(fit_help(), end="")
        return 0
    if name not in PRECHECKS:
        return None
    try:
        _function(PRECHECKS[name])(args)
    except LightningDimsError as error:
        print(f"lightning-dims {name}: error: {error}", file=sys.stderr)
        return 2
    return None


def main(argv: list[str] | None = None) -> int:
    if argv is None and hasattr(signal, "SIGPIPE"):  # `lightning-dims datasets | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
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
    answered = precheck(name, args[1:])
    if answered is not None:
        return answered
    return int(_function(SUBCOMMANDS[name][0])(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
