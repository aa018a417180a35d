"""W&B's code tab shows what ran: every run logs the ``lightning_dims`` source at the installed version (offline here)."""

from __future__ import annotations

from lightning_dims.tracking import code, run as tracking_run
from lightning_dims.tracking.run import WandbOptions, finish_wandb, make_run_logger


def test_every_run_logs_the_package_source_as_its_code_artifact(tmp_path, monkeypatch):
    logged = []

    def logging_source(wandb_run):
        logged.append(code.log_package_source(wandb_run))
        return logged[-1]

    monkeypatch.setattr(tracking_run, "log_package_source", logging_source)
    logger = make_run_logger(WandbOptions(mode="offline"), "code-tab", tmp_path)
    try:
        (artifact,) = logged
        assert artifact.type == "code" and artifact.name.startswith(code.code_artifact_name())
        root = code.package_root()
        expected = sorted(
            str(path.relative_to(root)) for path in root.rglob("*")
            if path.suffix in code.SOURCE_SUFFIXES and "__pycache__" not in path.parts
        )  # fmt: skip
        assert sorted(artifact.manifest.entries) == expected
        assert {"cli.py", "tracking/code.py", "training/fit_schema.json", "configs/sweeps/paper.yaml"} <= set(expected)
    finally:
        finish_wandb([logger])
    logged.clear()
    finish_wandb([make_run_logger(WandbOptions(mode="offline", save_code=False), "no-code", tmp_path / "b")])
    assert logged == []  # --wandb.save_code false logs none
