"""Every private library API that ``lightning_dims.compat`` wraps still exists and behaves as used, on
the installed Lightning, W&B, jsonargparse and submitit: an upgrade that breaks one fails here."""

from __future__ import annotations

import ast
import inspect
import re
import signal
from pathlib import Path

import pytest
from jsonargparse import ArgumentParser, Namespace

from lightning_dims import compat

PACKAGE = Path(compat.__file__).parent

PRIVATE_NAMES = (
    "_experiment", "_wandb_init", "_get", "_offline", "_spec", "_make_submission_file_text", "_submitit_command_str",
    "_clear", "_run_exitfuncs", "_data_source",
)  # fmt: skip
"""The private attributes compat wraps (``USR_SIG``, ``affinity`` and the sweep utils are checked below)."""


def test_no_module_but_compat_touches_the_private_names():
    """The private attributes are used in compat only (attribute access on other objects, not our own ``self._x``)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE_NAMES:
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")) or node.attr == "_get":
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("wandb.sdk", "submitit.slurm")):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} from {node.module}")
    assert offenders == []


def test_wandb_logger_private_state(tmp_path):
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(save_dir=str(tmp_path), project="compat", mode="offline", anonymous=None)
    assert "anonymous" in logger._wandb_init  # Lightning still passes it: dropping it still matters
    compat.drop_wandb_init_setting(logger, "anonymous")
    assert "anonymous" not in logger._wandb_init
    assert compat.started_wandb_run(logger) is None  # looking does not start a run
    run = logger.experiment
    try:
        assert compat.started_wandb_run(logger) is run
        assert compat.wandb_run_offline(run) is True
    finally:
        run.finish()


def test_lightning_cli_get_reads_a_value_inside_a_subcommand_or_not():
    from lightning.pytorch.cli import LightningCLI

    assert list(inspect.signature(LightningCLI._get).parameters) == ["self", "config", "key", "default"]

    class Plain:
        subcommand = None

    class Validating:
        subcommand = "validate"

    assert compat.cli_config_value(Plain(), Namespace(trainer={"a": 1}), "trainer", {}) == {"a": 1}
    assert compat.cli_config_value(Plain(), Namespace(), "trainer", {}) == {}
    nested = Namespace(validate=Namespace(trainer={"b": 2}))
    assert compat.cli_config_value(Validating(), nested, "trainer", {}) == {"b": 2}


def test_jsonargparse_errors_still_name_the_key_in_their_first_line():
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--model.lr", type=float)
    with pytest.raises(Exception) as caught:
        parser.parse_args(["--model.lr", "fast"])
    assert compat.is_parser_error(caught.value)
    line = compat.parser_error_line(caught.value)
    assert line.startswith("model.lr: ") and "\n" not in line and "fast" in line


def test_wandb_sweep_command_builders_write_values_as_the_agent_does():
    create_sweep_command, create_sweep_command_args = compat.sweep_command_builders()
    assert create_sweep_command(["${env}", "${program}", "${args}"]) == ["${env}", "${program}", "${args}"]
    macros = create_sweep_command_args({"args": {"data": {"value": {"name": "mnist", "seed": 0}}, "n": {"value": None}}})
    assert macros["args"] == ["--data={'name': 'mnist', 'seed': 0}", "--n=None"]


def test_submitit_internals_give_the_sbatch_text_and_the_requeue_signal(tmp_path, monkeypatch):
    from submitit.slurm.slurm import SlurmExecutor

    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm"))  # no srun: the preview class must not look for it
    with pytest.raises(RuntimeError, match="srun"):
        SlurmExecutor(tmp_path)  # the check the preview class bypasses is still there
    assert isinstance(inspect.getattr_static(SlurmExecutor, "affinity"), classmethod)
    executor = compat.preview_slurm_executor_class()(tmp_path)
    executor.update_parameters(nodes=1, ntasks_per_node=1, cpus_per_task=4, srun_args=["--cpus-per-task=4"])
    text = compat.sbatch_text(executor, 3)
    assert "#SBATCH --array=0-2" in text and "#SBATCH --cpus-per-task=4" in text
    (srun,) = [line for line in text.splitlines() if line.startswith("srun ")]
    assert "--cpus-per-task=4" in srun and re.search(r"-m submitit\.core\._submit", srun)
    assert hasattr(signal, f"SIG{compat.submitit_requeue_signal_name()}")


def test_a_workspace_gives_its_wire_form_without_a_server():
    import wandb_workspaces.workspaces as ws

    workspace = ws.Workspace(entity="team", project="dims", name="view", sections=[ws.Section(name="s", panels=[])])
    wire = compat.workspace_wire_form(workspace)
    assert wire["displayName"] == "view" and [s["name"] for s in wire["spec"]["section"]["panelBankConfig"]["sections"]] == ["s"]


def test_sweep_parameter_file_reader(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("lr:\n  value: 0.1\ndata.train_size:\n  value: 60\n")
    assert compat.read_sweep_parameters(str(path)) == {"lr": 0.1, "data.train_size": 60}


def test_exit_handlers_forgotten_then_run():
    """In a process of its own: clearing this test session's exit handlers would be a side effect."""
    import subprocess
    import sys

    script = (
        "import atexit\nfrom lightning_dims import compat\n"
        "atexit.register(print, 'inherited')\ncompat.forget_exit_handlers()\n"
        "atexit.register(print, 'own')\ncompat.run_exit_handlers()\nprint('end')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["own", "end"]


def test_sweep_path_parsed_as_wandb_agent_does():
    parts, problem = compat.parse_sweep_path("team/proj/abc123")
    assert problem is None and (parts["entity"], parts["project"], parts["name"]) == ("team", "proj", "abc123")
    parts, problem = compat.parse_sweep_path("abc123")
    assert problem is None and parts["name"] == "abc123"
    assert compat.parse_sweep_path("a/b/c/d")[1]  # too many parts: wandb's own message


def test_wandb_flush_setting_exists_on_the_installed_wandb():
    import wandb

    settings = compat.wandb_flush_settings(2.0)
    assert settings == {"x_transaction_log_flush_interval": 2.0}  # gone: a killed run's history would not reach disk
    wandb.Settings(**settings)


def test_lightning_stage_data_source_is_what_fit_was_given():
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from tests.helpers.tiny_lightning import LitClassifier, quiet_trainer

    trainer = quiet_trainer()
    assert compat.stage_data_source(trainer, "val") is None
    train, val = DataLoader(range(4)), DataLoader(range(2))
    model = LitClassifier()
    trainer._data_connector.attach_data(model, train_dataloaders=train, val_dataloaders=val)
    assert compat.stage_data_source(trainer, "train") is train and compat.stage_data_source(trainer, "val") is val
    assert isinstance(compat.stage_data_source(trainer, "test"), pl.LightningModule)  # no test loaders: the module
