"""Results records: schema, callback contributions, atomic never-overwrite writing, reading back."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lightning_dims.records import (
    CorruptRecordWarning,
    RecordContributor,
    RecordExistsError,
    ResultsRecord,
    RunStatus,
    build_record,
    callback_fields,
    read_records,
    record_path,
    to_builtin,
    write_record,
)


def base(run_id: str = "r1", status: str = "finished", **fields) -> dict:
    return {
        "run_id": run_id,
        "status": status,
        "dataset": "digits",
        "domain": "natural",
        "classes": [3, 8],
        "arch": "resnet18",
        "n_train": 200,
        "seed": 0,
        "preprocessing": {"size": 32, "channels": 1, "intensity": "max255", "key": "32px-1ch-max255"},
        "test": {"loss": 0.25, "acc": 0.9, "auroc": 0.95},
        **fields,
    }


class FGSM(RecordContributor):
    def results_record_fields(self):
        return {"fgsm": {0.007843: {"clean_loss": 0.2, "clean_acc": 0.9, "attacked_loss": 0.5, "attacked_acc": 0.6}}}


class ReprA(RecordContributor):
    def results_record_fields(self):
        return {"d_repr": {"layer4": {"twonn": torch.tensor(7.5)}}, "custom_thing": np.float32(2.0)}


class ReprB(RecordContributor):
    def results_record_fields(self):
        return {"d_repr": {"layer4": {"mle": 8.0}, "fc": {"twonn": np.float64(3.0)}}}


class Broken(RecordContributor):
    def results_record_fields(self):
        raise RuntimeError("estimator exploded")


class Silent:  # not a RecordContributor: ignored even though it has the method
    def results_record_fields(self):
        return {"d_data": 1.0}


def test_contributions_merge_into_fields_and_extra():
    fields = callback_fields([FGSM(), ReprA(), Silent(), ReprB()])
    record = build_record(base(), fields)
    assert record.d_repr == {"layer4": {"twonn": 7.5, "mle": 8.0}, "fc": {"twonn": 3.0}}
    (eps, attack), = record.fgsm.items()
    assert eps == "0.007843"
    assert attack.loss_penalty == pytest.approx(0.3) and attack.acc_penalty == pytest.approx(0.3)
    assert record.extra["custom_thing"] == 2.0


def test_protected_fields_cannot_be_overridden_by_callbacks():
    record = build_record(base(), {"run_id": "hijack", "arch": "vgg16", "label_sharpness": 1.5e-4})
    assert record.run_id == "r1" and record.arch == "resnet18"
    assert record.extra["run_id"] == "hijack"
    assert record.label_sharpness == 1.5e-4


def test_a_failing_callback_is_recorded_not_fatal():
    with pytest.warns(UserWarning, match="estimator exploded"):
        fields = callback_fields([Broken(), FGSM()])
    record = build_record(base(), fields)
    assert "estimator exploded" in record.extra["callback_errors"]["Broken"]
    assert record.fgsm


def test_conflicting_scalars_warn_and_later_wins():
    class K1(RecordContributor):
        def results_record_fields(self):
            return {"d_data": 9.0}

    class K2(RecordContributor):
        def results_record_fields(self):
            return {"d_data": 10.0}

    with pytest.warns(UserWarning, match="d_data"):
        fields = callback_fields([K1(), K2()])
    assert fields["d_data"] == 10.0


def test_non_dict_contribution_is_a_clear_error():
    class Bad(RecordContributor):
        def results_record_fields(self):
            return [1, 2]

    with pytest.raises(TypeError, match="Bad.results_record_fields"):
        callback_fields([Bad()])


def test_to_builtin_turns_nan_into_none():
    assert to_builtin({"a": torch.tensor(float("nan")), 3: np.array([1.0, 2.0])}) == {"a": None, "3": [1.0, 2.0]}


def test_write_is_atomic_and_round_trips(tmp_path):
    record = build_record(base(), {"d_data": 9.25})
    path = write_record(record_path(tmp_path, "r1"), record)
    assert path == tmp_path / "r1.record.json"
    assert [p.name for p in tmp_path.iterdir()] == ["r1.record.json"]  # no temporary file left behind
    assert json.loads(path.read_text())["schema_id"] == "lightning-dims/results-record"
    (back,) = read_records(tmp_path)
    assert back == record


def test_finished_record_is_never_overwritten_nor_versioned(tmp_path):
    path = record_path(tmp_path, "r1")
    write_record(path, build_record(base(test={"loss": 0.1, "acc": 0.97})))
    with pytest.raises(RecordExistsError, match="--run_id"):
        write_record(path, build_record(base(test={"loss": 9.0, "acc": 0.1})))
    assert json.loads(path.read_text())["test"]["acc"] == 0.97
    assert [p.name for p in tmp_path.iterdir()] == ["r1.record.json"]  # no .v2 copies, ever


def test_unreadable_record_is_moved_aside_and_replaced(tmp_path):
    path = record_path(tmp_path, "r1")
    write_record(path, build_record(base()))
    path.write_text(path.read_text()[:100])  # truncated, e.g. by a full disk
    with pytest.warns(CorruptRecordWarning, match="r1.record.json.corrupt"):
        written = write_record(path, build_record(base(test={"loss": 0.2, "acc": 0.95})))
    assert written == path and read_records(tmp_path)[0].test.acc == 0.95
    assert (tmp_path / "r1.record.json.corrupt").read_text().startswith("{")


def test_old_versioned_copies_count_once_newest_finished_first(tmp_path):
    older = build_record(base(test={"loss": 0.5, "acc": 0.8}, finished_at="2026-01-01T00:00:00Z"))
    newer = build_record(base(test={"loss": 0.4, "acc": 0.9}, finished_at="2026-02-01T00:00:00Z"))
    failed = build_record(base(status="failed", test=None, finished_at="2026-03-01T00:00:00Z"))
    write_record(tmp_path / "r1.record.json", older)
    write_record(tmp_path / "r1.v2.record.json", newer)
    write_record(tmp_path / "r1.v3.record.json", failed)
    (record,) = read_records(tmp_path)
    assert record.test.acc == 0.9


def test_failed_record_is_replaced_by_a_later_attempt(tmp_path):
    path = record_path(tmp_path, "r1")
    write_record(path, build_record(base(status="failed", test=None, error="RuntimeError: boom")))
    written = write_record(path, build_record(base()))
    assert written == path and read_records(tmp_path)[0].status == "finished"


def test_nan_metric_serialises_as_null(tmp_path):
    record = build_record(base(test={"loss": 0.3, "acc": 1.0, "auroc": float("nan")}))
    assert record.test.auroc is None
    path = write_record(tmp_path / "x.record.json", record)
    assert json.loads(path.read_text())["test"]["auroc"] is None


def test_schema_rejects_unknown_top_level_fields_and_bad_status():
    with pytest.raises(ValueError):
        ResultsRecord.model_validate(base() | {"tset_acc": 0.9})
    with pytest.raises(ValueError):
        ResultsRecord.model_validate(base(status="done"))
    with pytest.raises(ValueError):  # an attempt's status, never a run's
        ResultsRecord.model_validate(base(status="killed"))


def test_stored_records_read_their_status_as_a_run_status_and_write_it_back_unchanged():
    from pathlib import Path

    stored = sorted((Path(__file__).parents[1] / "docs" / "reproduction").rglob("*.record.json"))
    assert stored
    for path in stored[:5]:
        text = path.read_text()
        record = ResultsRecord.model_validate_json(text)
        assert isinstance(record.status, RunStatus) and record.status == json.loads(text)["status"]
        assert record.model_dump_json(indent=2) + "\n" == text
        assert all(isinstance(attempt.status, RunStatus) for attempt in record.attempts)
    assert f"{RunStatus.INTERRUPTED}" == str(RunStatus.INTERRUPTED) == json.loads(json.dumps(RunStatus.INTERRUPTED)) == "interrupted"


def test_flat_view_for_tables():
    flat = build_record(base(), callback_fields([FGSM()])).flat()
    assert flat["test.acc"] == 0.9 and flat["fgsm.0.007843.attacked_acc"] == 0.6
    assert not any(isinstance(value, float) and math.isnan(value) for value in flat.values())


def test_read_records_names_a_broken_file(tmp_path):
    (tmp_path / "bad.record.json").write_text('{"run_id": "x"}')
    with pytest.raises(ValueError, match="bad.record.json"):
        read_records(tmp_path)
