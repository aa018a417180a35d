"""The shared prepare runner: kill-and-resume, refusals that protect finished work, the draw, the cache fingerprint."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.official_layouts import make_chexpert, make_rsna, read_manifest_rows, run_prepare

from lightning_dims.data import DatasetTask
from lightning_dims.prepare.imaging import resize_like_skimage
from lightning_dims.prepare.journal import Journal
from lightning_dims.prepare.sampling import class_orders, draw
from lightning_dims.prepare.tasks import Task, TaskResult
from lightning_dims.utils import TEMPORARY_GLOB
from tests.helpers.processes import child_env

REPO = Path(__file__).resolve().parents[1]


def journal_lines(out: Path) -> list[str]:
    path = out / ".prepare" / "journal.jsonl"
    return path.read_text().splitlines() if path.is_file() else []


def test_killed_prepare_continues_without_redoing_work(tmp_path, rng, capsys):
    make_rsna(tmp_path / "kaggle", rng, n=300)
    out = tmp_path / "data" / "rsna"
    command = [sys.executable, "-m", "lightning_dims.cli", "prepare", "rsna", "--source", str(tmp_path / "kaggle"), "--out", str(out), "--size", "16", "--workers", "1", "--quiet"]
    process = subprocess.Popen(command, cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(journal_lines(out)) < 40 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()
    _, stderr = process.communicate()
    done_before = len([line for line in journal_lines(out) if line.endswith("}")])
    assert process.returncode != 0 and 40 <= done_before < 304, stderr.decode()[-2000:]
    assert not (out / "manifest.csv").exists()
    code, _, stderr = run_prepare(capsys, "rsna", "--source", str(tmp_path / "kaggle"), "--out", str(out), "--size", "16", "--workers", "1")
    assert code == 0, stderr
    assert f"continued an interrupted prepare ({done_before} files were already done)" in stderr
    keys = [json.loads(line)["key"] for line in journal_lines(out) if line.endswith("}")]
    assert len(keys) == len(set(keys)) == 304  # every file converted exactly once: 300 + signed, CT_small, unequal, truncated
    assert not list(out.rglob(TEMPORARY_GLOB))
    code, _, stderr = run_prepare(capsys, "rsna", "--source", str(tmp_path / "kaggle"), "--out", str(tmp_path / "straight"), "--size", "16")
    assert code == 0, stderr
    once, resumed = read_manifest_rows(tmp_path / "straight"), read_manifest_rows(out)
    assert resumed == once
    assert all((out / row["path"]).read_bytes() == (tmp_path / "straight" / row["path"]).read_bytes() for row in once)


def test_finished_work_is_never_overwritten(tmp_path, rng, capsys):
    make_rsna(tmp_path / "kaggle", rng, n=6)
    source, out = str(tmp_path / "kaggle"), tmp_path / "rsna"
    assert run_prepare(capsys, "rsna", "--source", source, "--out", str(out), "--size", "16")[0] == 0
    manifest = (out / "manifest.csv").read_bytes()
    code, stdout, _ = run_prepare(capsys, "rsna", "--source", source, "--out", str(out), "--size", "16")
    assert code == 0 and "already prepared" in stdout and (out / "manifest.csv").read_bytes() == manifest
    code, _, stderr = run_prepare(capsys, "rsna", "--source", source, "--out", str(out), "--size", "24")
    assert code == 2 and f"--out {out} holds a prepare with other options (size); use another --out" in stderr
    code, _, stderr = run_prepare(capsys, "mura", "--source", source, "--out", str(out))
    assert code == 2 and "holds a prepare with dataset 'rsna'" in stderr
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("precious")
    code, _, stderr = run_prepare(capsys, "rsna", "--source", source, "--out", str(tmp_path / "busy"))
    assert code == 2 and "is not empty and holds no unfinished prepare" in stderr
    code, _, stderr = run_prepare(capsys, "rsna", "--source", source, "--out", str(tmp_path / "kaggle" / "out"))
    assert code == 2 and "lies inside --source" in stderr
    code, _, stderr = run_prepare(capsys, "rsna", "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"))
    assert code == 2 and "no such folder" in stderr
    assert (out / "manifest.csv").read_bytes() == manifest and (tmp_path / "busy" / "thesis.tex").read_text() == "precious"


def test_preparation_spec_is_part_of_the_cache_fingerprint(tmp_path, rng, capsys):
    make_rsna(tmp_path / "kaggle", rng, n=12)
    out = tmp_path / "data" / "rsna"
    assert run_prepare(capsys, "rsna", "--source", str(tmp_path / "kaggle"), "--out", str(out), "--size", "16")[0] == 0

    def fingerprints(dataset, root):
        task = DatasetTask(dataset, train_size=4, val_size=0, test_size=0, size=16, data_root=root)
        return task.pool().signature, task.property_fingerprint(m=4, k=3, estimator="mle", kf_mode="exhaustive")

    prepared = fingerprints("rsna", tmp_path / "data")
    assert prepared == fingerprints("rsna", tmp_path / "data")  # stable
    spec = json.loads((out / "prepare.json").read_text())
    spec["options"]["size"] = 224
    (out / "prepare.json").write_text(json.dumps(spec))
    edited = fingerprints("rsna", tmp_path / "data")
    csv_with_spec = fingerprints("csv", out / "manifest.csv")[0]
    (out / "prepare.json").unlink()
    absent = fingerprints("rsna", tmp_path / "data")
    assert len({prepared[0], edited[0], absent[0]}) == 3 and len({prepared[1], edited[1], absent[1]}) == 3
    assert csv_with_spec != fingerprints("csv", out / "manifest.csv")[0]  # the csv dataset reads the sidecar too


def test_draw_replaces_refused_files_and_is_seeded():
    tasks = [Task(f"t{i}", {}, i % 2) for i in range(20)]
    orders = class_orders(tasks, seed=5)
    assert orders == class_orders(tasks, seed=5) and orders != class_orders(tasks, seed=6)
    first = draw(orders, 3, lambda key: None)
    assert [task.label for task in first].count(0) == 3 and [task.label for task in first].count(1) == 3
    refused = first[0].key
    second = draw(orders, 3, lambda key: False if key == refused else (True if key in {t.key for t in first} else None))
    assert refused not in {task.key for task in second}
    assert len(second) == 6 and {task.key for task in first} - {refused} <= {task.key for task in second}
    assert second[2] == orders[first[0].label][3]  # the next task of the refused one's class took its place


def test_journal_ignores_a_line_cut_by_a_kill(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("a", True, TaskResult(rows=[{"path": "images/a.png", "label": 1, "patient_id": "p"}]))
    journal.close()
    with open(tmp_path / "journal.jsonl", "a") as stream:
        stream.write('{"key": "b", "ok": tr')
    reopened = Journal(tmp_path / "journal.jsonl")
    assert reopened.ok("a") is True and reopened.ok("b") is None and reopened.result("a").rows[0]["label"] == 1


@pytest.mark.parametrize("shape,size", [((40, 40), 16), ((37, 53), 24), ((20, 20), 32), ((64, 30), 30), ((16, 16), 16)])
def test_resize_equals_skimage(rng, shape, size):
    from skimage.transform import resize

    image = rng.random(shape) * 255
    assert np.allclose(resize_like_skimage(image, (size, size)), resize(image, (size, size)), rtol=0, atol=1e-9)


def test_every_preparable_radiology_set_has_a_preparer_and_a_page():
    from lightning_dims.data.manifest import RADIOLOGY_SETS
    from lightning_dims.prepare import PREPARERS

    assert set(PREPARERS) == {spec.name for spec in RADIOLOGY_SETS if spec.preparable}
    for preparer in PREPARERS.values():
        assert (REPO / preparer.doc).is_file(), preparer.doc
        assert all(option.default is not None or option.location for option in preparer.options)


def test_a_table_error_leaves_the_output_folder_untouched(tmp_path, rng, capsys):

    make_chexpert(tmp_path / "stanford", rng, patients=2)
    out = tmp_path / "chexpert"
    code, _, stderr = run_prepare(capsys, "chexpert", "--source", str(tmp_path / "stanford"), "--out", str(out), "--finding", "Pleural Efusion")
    assert code == 2 and "lacks column(s) ['Pleural Efusion']" in stderr and not out.exists()
    code, _, stderr = run_prepare(capsys, "chexpert", "--source", str(tmp_path / "stanford"), "--out", str(out))
    assert code == 0, stderr
