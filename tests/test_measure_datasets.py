"""`lightning-dims measure` and `lightning-dims datasets` on the registry and the property cache."""

import json

import pytest

from lightning_dims.cli import main
from lightning_dims.data import DatasetTask
from tests.helpers.reference_properties import brute_force_properties

REAL_DATA = pytest.mark.real_data  # needs $LIGHTNING_DIMS_DATA: skipped without it, a failure under CI=true
MEASURED = [
    pytest.param(["--dataset", "mnist", "--classes", "3,8"], "real", marks=REAL_DATA, id="mnist"),
    pytest.param(["--dataset", "pneumoniamnist"], "real", marks=REAL_DATA, id="pneumoniamnist"),
    pytest.param(["--dataset", "brain-tissue"], "embedded", id="brain-tissue"),
    pytest.param(["--dataset", "digits"], "embedded", id="digits"),
]


def measure_json(capsys, arguments):
    assert main(["measure", *arguments, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def data_root_arguments(request, source: str) -> list[str]:
    """``--data-root`` for the real datasets (params marked ``real_data``); nothing for embedded ones."""
    real = request.node.get_closest_marker("real_data") is not None
    assert real == (source == "real")
    return ["--data-root", str(request.getfixturevalue("shared_data"))] if real else []


@pytest.mark.parametrize("arguments, source", MEASURED)
def test_measure_json_equals_brute_force_then_is_served_from_cache(request, capsys, arguments, source):
    options = [*arguments, "--n", "1000", "--img-size", "48", *data_root_arguments(request, source)]
    first = measure_json(capsys, options)
    assert first["dataset"] == arguments[1] and first["n"] == 1000 and first["cached"] is False
    assert first["preprocessing"] == {"size": 48, "channels": 1, "intensity": "max255", "key": "48px-1ch-max255"}
    assert first["estimator"] == "mle" and first["k"] == 20 and first["m"] == 1000
    classes = [int(c) for c in arguments[3].split(",")] if "--classes" in arguments else None
    root = options[options.index("--data-root") + 1] if "--data-root" in options else None
    task = DatasetTask(arguments[1], classes=classes, train_size=1000, size=48, data_root=root)
    assert task.property_fingerprint(1000, 20, "mle", "exhaustive") == first["fingerprint"]  # the same 1000 images
    k_f, d_data = brute_force_properties(task.images("train"), task.labels("train"))
    assert first["label_sharpness"] == pytest.approx(k_f, rel=1e-5)
    assert first["d_data"] == pytest.approx(d_data, rel=1e-5)
    second = measure_json(capsys, options)
    assert second["cached"] is True and second["fingerprint"] == first["fingerprint"]
    assert second["label_sharpness"] == first["label_sharpness"] and second["d_data"] == first["d_data"]


def test_measure_matches_the_datamodule_training_set(capsys):
    from lightning_dims.data import DimsDataModule

    record = measure_json(capsys, ["--dataset", "digits", "--classes", "0,1", "--n", "100", "--val-size", "20", "--test-size", "40", "--img-size", "16"])
    dm = DimsDataModule(name="digits", classes=[0, 1], train_size=100, val_size=20, test_size=40, size=16)
    properties = dm.dataset_properties()
    assert properties.cached is True and properties.fingerprint == record["fingerprint"]


def test_measure_synthetic_option(capsys):
    record = measure_json(capsys, ["--dataset", "synthetic", "--option", "d=4", "--n", "600", "--img-size", "16"])
    assert record["options"]["d"] == 4 and abs(record["d_data"] - 4) < 1


def test_measure_unknown_option_is_one_line(capsys):
    assert main(["measure", "--dataset", "digits", "--option", "d=4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no option" in err[0]


def test_datasets_lists_every_name_with_availability(shared_data, capsys):
    assert main(["datasets", "--data-root", str(shared_data), "--json"]) == 0
    rows = {row["name"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    natural = {"mnist", "fashionmnist", "cifar10", "svhn", "imagenet"}
    medical = {"brats", "dbc", "oai", "chexpert", "mura", "rsna", "prostate", "isic", "pneumoniamnist", "breastmnist"}
    assert natural | medical | {"folder", "csv", "digits", "brain-tissue", "synthetic"} <= set(rows)
    assert all(rows[name]["domain"] == "natural" for name in natural)
    assert all(rows[name]["domain"] == "medical" for name in medical)
    assert rows["mnist"]["available"] == "present" and rows["cifar10"]["available"] == "missing"
    assert rows["digits"]["available"] == "embedded" and rows["cifar10"]["channels"] == 3
    assert main(["datasets"]) == 0
    assert "brain-tissue" in capsys.readouterr().out
