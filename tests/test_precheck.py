"""``fit``/``validate``/``test`` mistakes refused before torch loads, against a schema of the live parser."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lightning_dims.cli import main
from lightning_dims.errors import ConfigError
from lightning_dims.training import precheck
from lightning_dims.training.schema import SCHEMA_FILE, load_schema, type_accepts
from tests.helpers.processes import child_env


@pytest.mark.slow  # a fresh process importing torch, Lightning and W&B: 7-23 s on the shared 2-core box
def test_committed_schema_is_the_live_parsers():
    """After a change to the model, the data module, Lightning or jsonargparse this fails:
    regenerate with ``python -m lightning_dims.training.schema``. Built in a fresh process, as ``fit``
    builds its parser: the help lists the callback classes imported so far, and tests import their own."""
    code = "import json; from lightning_dims.training.schema import build_schema; print(json.dumps(build_schema()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    live = json.loads(done.stdout.strip().splitlines()[-1])
    assert load_schema() == live, f"{SCHEMA_FILE} is stale: run python -m lightning_dims.training.schema"


def test_type_accepts_reads_the_type_hints():
    from typing import Literal, Optional

    assert type_accepts(Optional[int]) == ["int", "null"]
    assert type_accepts(Literal["a", 1] | None) == [{"literal": ["a", 1]}, "null"]
    assert type_accepts(list[int] | None) == ["list[int]", "null"]
    assert type_accepts(int | type) is None  # a class: only the real parser can judge


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model.achr", "resnet18"], "unknown key 'model.achr' (did you mean model.arch?)"),
        (["--trainer.max_epochs=ten"], "trainer.max_epochs: 'ten' is not int or null"),
        (["--preset", "papr"], "preset: 'papr' is not one of ['paper', 'none']"),
        (["--data={'name': 'digits', 'sed': 1}"], "--data: unknown key 'data.sed' (did you mean data.seed?)"),
    ],
)
def test_refuses_what_the_parser_refuses(args, expected):
    with pytest.raises(ConfigError) as error:
        precheck.check_fit_args(args)
    assert expected in str(error.value)


def test_config_files_missing_or_with_a_bad_key_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  arch: resnet18\ntrainer:\n  max_epoch: 3\n")
    with pytest.raises(ConfigError, match=rf"config file {bad}: unknown key 'trainer.max_epoch' \(did you mean trainer.max_epochs\?\)"):
        precheck.check_fit_args(["-c", str(bad)])
    with pytest.raises(ConfigError, match="'missing.yaml' is neither a file nor a shipped config"):
        precheck.check_fit_args(["--config=missing.yaml"])
    with pytest.raises(ConfigError, match="data.train_size: 'x' is not int"):
        precheck.check_evaluate_args(["--ckpt_path", "a.ckpt", "--json", "--data.train_size", "x"])


def test_passes_what_only_the_real_parser_can_judge():
    precheck.check_fit_args(
        ["--config", "callbacks/paper", "--optimizer", "Adam", "--optimizer.lr", "0.01", "--trainer.callbacks+=EarlyStopping",
         "--trainer.callbacks.monitor=val/loss", "--trainer.max_time=00:01:00:00", "--trainer.precision=16-mixed",
         "--trainer.limit_train_batches=0.5", "--data.classes=[3, 8]", "--model.lr=1e-3", "--data.dataset_options={'d': 4}"]
    )  # fmt: skip


def test_fit_help_is_served_from_the_schema(capsys):
    assert main(["fit", "--help"]) == 0
    assert capsys.readouterr().out == load_schema()["help"]


def test_a_misspelt_key_is_refused_before_torch_lightning_or_wandb_load():
    code = (
        "import sys; from lightning_dims.cli import main; rc = main(['fit', '--model.achr', 'resnet18']); "
        "print(rc, [m for m in ('torch', 'lightning', 'wandb') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=60)
    assert done.stdout.split() == ["2", "[]"], done.stderr
    assert "lightning-dims fit: error: unknown key 'model.achr' (did you mean model.arch?)" in done.stderr
