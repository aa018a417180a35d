"""`lightning-dims measure --json` on the embedded digits: the design's JSON contract."""

import json

import pytest

from lightning_dims.cli import main
from lightning_dims.data import DatasetTask
from tests.helpers.reference_properties import brute_force_properties


def test_measure_json_contract(capsys):
    assert main(["measure", "--dataset", "digits", "--classes", "3,8", "--n", "300", "--img-size", "16", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    for field in ("dataset", "n", "label_sharpness", "d_data", "estimator", "k", "preprocessing", "seconds"):
        assert field in record, field
    assert record["dataset"] == "digits" and record["n"] == 300 and record["k"] == 20
    assert record["preprocessing"]["size"] == 16 and record["preprocessing"]["intensity"] == "max255"
    task = DatasetTask("digits", classes=[3, 8], train_size=300, size=16)
    k_f, d_data = brute_force_properties(task.images("train"), task.labels("train"))
    assert record["fingerprint"] == task.property_fingerprint(1000, 20, "mle", "exhaustive")  # the same 300 images
    assert record["label_sharpness"] == pytest.approx(k_f, rel=1e-6) and record["d_data"] == pytest.approx(d_data, rel=1e-6)


def test_unknown_subcommand_exits_2(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown subcommand" in capsys.readouterr().err


def test_help_lists_subcommands(capsys):
    assert main(["--help"]) == 0
    assert "measure" in capsys.readouterr().out


def test_measure_reports_the_k_f_spread_over_draws(capsys):
    args = ["measure", "--dataset", "digits", "--n", "800", "--val-size", "0", "--test-size", "0",
            "--img-size", "16", "--m", "400", "--kf-spread", "4", "--json"]
    assert main(args) == 0
    record = json.loads(capsys.readouterr().out)
    spreads = record["label_sharpness_spread"]
    assert [s["m"] for s in spreads] == [50, 100, 200, 400]
    assert all(len(s["values"]) == 4 and s["min"] <= s["mean"] <= s["max"] for s in spreads)
    assert spreads[0]["mean"] < spreads[-1]["mean"] and spreads[-1]["std"] > 0  # m < N: draws differ
