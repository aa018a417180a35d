"""W&B sweeps on the server: a sweep's configuration, and W&B's in-process agent that hands out its runs.

``lightning-dims agent SWEEP_ID`` reads the sweep (:func:`fetch_sweep`: its ``command`` and
``program``) and runs W&B's agent (:func:`run_agent`: ``wandb.agent(..., function=...)``), which
calls the function once per run it hands out; the function is
:class:`~lightning_dims.sweep.agent.AgentJob`, which forks the run's ``lightning-dims fit``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from lightning_dims.compat import parse_sweep_path
from lightning_dims.errors import LightningDimsError

__all__ = ["AgentRunError", "fetch_sweep", "run_agent"]


class AgentRunError(LightningDimsError, RuntimeError):
    """A run handed out by the W&B sweep controller did not end well (W&B marks it failed)."""


def fetch_sweep(sweep_id: str, entity: str | None = None, project: str | None = None) -> dict:
    """The configuration of W&B sweep ``[ENTITY/[PROJECT/]]SWEEP_ID`` from the W&B server (needs ``wandb login``)."""
    import wandb

    parts, problem = parse_sweep_path(sweep_id, entity, project)
    if problem:
        raise AgentRunError(f"sweep id {sweep_id!r}: {problem}")
    project = parts.get("project") or os.environ.get("WANDB_PROJECT")
    if not project:
        raise AgentRunError(f"sweep id {sweep_id!r} names no project: give ENTITY/PROJECT/SWEEP_ID or --project")
    try:
        api = wandb.Api()
        entity = parts.get("entity") or os.environ.get("WANDB_ENTITY") or api.default_entity
        return dict(api.sweep(f"{entity}/{project}/{parts['name']}").config)
    except Exception as error:  # no key, no server, no such sweep: W&B's own message, and the fix
        raise AgentRunError(
            f"could not read sweep {sweep_id!r} from W&B ({str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}): "
            "check `wandb login` and the sweep's ENTITY/PROJECT/SWEEP_ID"
        ) from None


def run_agent(sweep_id: str, function: Callable[[], None], entity: str | None, project: str | None, count: int | None) -> None:
    """Run W&B's agent on sweep ``sweep_id``: ``function`` once per run the sweep controller hands out
    (at most ``count`` runs; None: until the sweep ends). W&B sets ``WANDB_RUN_ID``,
    ``WANDB_SWEEP_ID`` and ``WANDB_SWEEP_PARAM_PATH`` before each call."""
    import wandb

    wandb.agent(sweep_id, function=function, entity=entity, project=project, count=count)
