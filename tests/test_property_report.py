"""PropertyReport: the typed measurement keeps the JSON the cache, records and ``measure --json`` always had.

``tests/fixtures/property-cache-v2/`` holds a cache entry written by the dict-returning
``DatasetTask.properties`` (before the report was typed), byte for byte: digits 3 vs 8, 60
training images at 8 px, m = 40, MLE k = 5.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lightning_dims.data import DatasetTask, property_cache
from lightning_dims.data.property_report import PropertyReport

STORED = next((Path(__file__).parent / "fixtures" / "property-cache-v2").glob("*.json"))
MEASURED = dict(m=40, k=5, device="cpu")

FRESH_ORDER = [
    "dataset", "task", "domain", "options", "classes", "class_names", "split_sizes", "seed", "preprocessing",
    "source", "n", "label_sharpness", "d_data", "estimator", "k", "estimator_options", "m", "kf_mode",
    "fingerprint", "label_sharpness_detail", "d_data_detail", "kf_pair_pool_indices", "label_conflicts",
    "compute_seconds", "cached",
]  # fmt: skip
"""The key order of a fresh measurement's JSON before the report was typed (describe(), then the numbers)."""


def stored_task() -> DatasetTask:
    return DatasetTask("digits", classes=[3, 8], train_size=60, val_size=10, test_size=20, size=8)


def install_stored_entry() -> Path:
    target = property_cache.entry_path(STORED.stem)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(STORED, target)
    return target


def test_the_stored_entry_is_this_task_s_fingerprint():
    assert stored_task().property_fingerprint(40, 5, "mle", "exhaustive") == STORED.stem


def test_an_entry_written_before_the_report_was_typed_is_served_and_rewritten_byte_for_byte():
    target = install_stored_entry()
    report = stored_task().properties(**MEASURED)
    assert report.cached is True and report.fingerprint == STORED.stem
    # what the dict version returned for a cache hit: the entry as loaded (sorted keys), then "cached"
    assert json.dumps(report.to_json()) == json.dumps(json.loads(STORED.read_text()) | {"cached": True})
    target.unlink()
    assert property_cache.store_entry(report.fingerprint, report.cache_entry()).read_bytes() == STORED.read_bytes()


def test_a_fresh_report_lists_its_keys_in_the_old_order_and_caches_what_it_returns():
    report = stored_task().properties(**MEASURED, cache="refresh")
    assert report.cached is False and list(report.to_json()) == FRESH_ORDER
    assert json.loads(property_cache.entry_path(report.fingerprint).read_text()) == report.cache_entry()
    assert PropertyReport.from_json(report.to_json()) == report
    assert PropertyReport.from_json(json.loads(json.dumps(report.to_json()))) == report


@pytest.mark.parametrize(
    "written",
    ['{"label_sharpness": 1.0, "d_data": 2.0}', "[1, 2]", "null", '"text"', "{"],
    ids=["missing-keys", "a-list", "null", "a-string", "half-written"],
)
def test_an_entry_of_another_shape_is_a_miss_that_is_measured_again_and_replaced(written):
    target = install_stored_entry()
    target.write_text(written)
    report = stored_task().properties(**MEASURED)
    assert report.cached is False and report.label_sharpness == pytest.approx(json.loads(STORED.read_text())["label_sharpness"])
    assert PropertyReport.from_cache_entry(json.loads(target.read_text())) == PropertyReport.from_json(report.to_json() | {"cached": True})


def test_an_entry_with_a_key_this_version_does_not_know_is_a_miss():
    target = install_stored_entry()
    target.write_text(json.dumps(json.loads(STORED.read_text()) | {"renamed_field": 1}, sort_keys=True))
    assert stored_task().properties(**MEASURED).cached is False
    assert "renamed_field" not in json.loads(target.read_text())


def test_from_json_names_what_is_wrong():
    with pytest.raises(ValueError, match=r"missing keys \['cached'\].*unknown keys \['extra'\]"):
        PropertyReport.from_json(json.loads(STORED.read_text()) | {"extra": 1})
