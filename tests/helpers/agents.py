"""What W&B's in-process agent sets up before it calls a sweep function, for tests of ``sweep.agent``."""

from __future__ import annotations

from pathlib import Path


def agent_environment(tmp_path: Path, run_id: str, parameters: dict, monkeypatch) -> None:
    """What W&B's in-process agent (``wandb.agents.pyagent.Agent._run_job``) sets before it calls the function."""
    from wandb.sdk.lib.config_util import save_config_file_from_dict

    path = tmp_path / "wandb" / "sweep-sweep7" / f"config-{run_id}.yaml"
    save_config_file_from_dict(str(path), {name: {"value": value} for name, value in parameters.items()})
    monkeypatch.setenv("WANDB_RUN_ID", run_id)
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep7")
    monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", str(path))
    monkeypatch.setenv("WANDB_PROJECT", "lightning-dims")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
