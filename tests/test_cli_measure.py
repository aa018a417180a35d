"""`lightning-dims measure --json` on the embedded digits: the design's JSON contract."""

import json

import pytest

from lightning_dims.cli import main


def test_measure_json_contract(capsys):
    assert main(["measure", "--dataset", "digits", "--classes", "3,8", "--n", "300", "--img-size", "16", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    for field in ("dataset", "n", "label_sharpness", "d_data", "estimator", "k", "preprocessing", "seconds"):
        assert field in record, field
    assert record["dataset"] == "digits" and record["n"] == 300 and record["k"] == 20
    assert record["preprocessing"]["size"] == 16 and record["preprocessing"]["intensity"] == "max255"
    assert 0 < record["label_sharpness"] < 1 and 2 < record["d_data"] < 30


def test_unknown_subcommand_exits_2(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown subcommand" in capsys.readouterr().err


def test_help_lists_subcommands(capsys):
    assert main(["--help"]) == 0
    assert "measure" in capsys.readouterr().out
