"""`lightning-dims measure` and `lightning-dims datasets` on the registry and the property cache."""

import json

import pytest

from lightning_dims.cli import main

MEASURED = [
    ["--dataset", "mnist", "--classes", "3,8"],
    ["--dataset", "pneumoniamnist"],
    ["--dataset", "brain-tissue"],
    ["--dataset", "digits"],
]


def measure_json(capsys, arguments):
    assert main(["measure", *arguments, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def check_record(record, arguments, size):
    assert record["dataset"] == arguments[1] and record["n"] == 1000
    assert 0 < record["label_sharpness"] < 1 and 2 < record["d_data"] < 40
    assert record["preprocessing"] == {"size": size, "channels": 1, "intensity": "max255", "key": f"{size}px-1ch-max255"}
    assert record["estimator"] == "mle" and record["k"] == 20 and record["m"] == 1000
    assert record["domain"] in ("natural", "medical") and len(record["classes"]) >= 2


@pytest.mark.parametrize("arguments", MEASURED, ids=lambda a: a[1])
def test_measure_json_then_served_from_cache(shared_data, capsys, arguments):
    first = measure_json(capsys, [*arguments, "--n", "1000", "--img-size", "48", "--data-root", str(shared_data)])
    check_record(first, arguments, 48)
    assert first["cached"] is False
    second = measure_json(capsys, [*arguments, "--n", "1000", "--img-size", "48", "--data-root", str(shared_data)])
    assert second["cached"] is True and second["fingerprint"] == first["fingerprint"]
    assert second["label_sharpness"] == first["label_sharpness"] and second["d_data"] == first["d_data"]


@pytest.mark.slow
@pytest.mark.parametrize("arguments", MEASURED, ids=lambda a: a[1])
def test_measure_at_the_paper_spec(shared_data, capsys, monkeypatch, arguments):
    monkeypatch.setenv("LIGHTNING_DIMS_DATA", str(shared_data))
    record = measure_json(capsys, [*arguments, "--n", "1000", "--quiet"])
    check_record(record, arguments, 224)
    assert record["cached"] is False
    assert measure_json(capsys, [*arguments, "--n", "1000"])["cached"] is True


def test_measure_matches_the_datamodule_training_set(capsys):
    from lightning_dims.data import DimsDataModule

    record = measure_json(capsys, ["--dataset", "digits", "--classes", "0,1", "--n", "100", "--val-size", "20", "--test-size", "40", "--img-size", "16"])
    dm = DimsDataModule(name="digits", classes=[0, 1], train_size=100, val_size=20, test_size=40, size=16)
    properties = dm.dataset_properties()
    assert properties["cached"] is True and properties["fingerprint"] == record["fingerprint"]


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
