"""``lightning-dims dashboard --entity E --project P [--sweep ID]``: a W&B workspace and report of the paper's figures.

Test loss vs N (log-log) per architecture, test loss vs ln N / d_data, FGSM loss penalty vs K_F,
d_repr vs d_data (y = x), d_repr over training, K_F and d_data per dataset, and arch / N / dataset
-> test loss; runs coloured by domain (``lightning_dims.tracking.dashboards``). ``--print`` writes the spec
and the workspace as W&B would receive it, as JSON on stdout, without a server.
"""

from __future__ import annotations

import argparse
import json
import sys

from lightning_dims.cli import user_errors
from lightning_dims.errors import UsageError
from lightning_dims.tracking.dashboard_spec import DEFAULT_D_MAX, dashboard_spec

__all__ = ["PROG", "build_parser", "main"]

PROG = "lightning-dims dashboard"


def build_parser() -> argparse.ArgumentParser:
    from lightning_dims.models.registry import list_models

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split(":", 1)[1].strip().split("\n\n")[0])
    parser.add_argument("--entity", required=True, help="W&B team or user that owns the project")
    parser.add_argument("--project", required=True, help="W&B project the runs were logged to")
    parser.add_argument("--sweep", help="only the runs of this sweep id")
    parser.add_argument(
        "--arch", action="append", metavar="NAME",
        help=f"an architecture to give its own generalization section; repeatable (default: {' '.join(list_models())})",
    )  # fmt: skip
    parser.add_argument("--estimator", default="twonn", help="d_repr estimator to plot (as logged: d_repr/penultimate/NAME)")
    parser.add_argument(
        "--d-max", type=float, default=DEFAULT_D_MAX,
        help=f"upper end of both axes of d_repr vs d_data, so its diagonal is y = x (default {DEFAULT_D_MAX:g})",
    )  # fmt: skip
    parser.add_argument("--print", action="store_true", help="print the spec as JSON instead of creating anything in W&B")
    return parser


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    from lightning_dims.models.registry import list_models
    from lightning_dims.tracking import dashboards

    args = build_parser().parse_args(argv)
    try:
        spec = dashboard_spec(args.entity, args.project, args.sweep, args.arch or list_models(), args.estimator, args.d_max)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.print:
        document = {"spec": spec.to_json(), "workspace": dashboards.workspace_wire_spec(spec)}
        print(json.dumps(document, indent=2, default=str))
        return 0
    try:
        workspace_url, report_url = dashboards.save_dashboards(spec)
    except Exception as error:  # no login, no server, no access to the project
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UsageError(
            f"could not create the dashboards in W&B ({reason}); log in with `wandb login` (or set WANDB_API_KEY), "
            "or use --print to see the spec without a server"
        ) from None
    print(f"workspace: {workspace_url}\nreport: {report_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
