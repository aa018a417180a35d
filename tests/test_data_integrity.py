"""Honest caches and safe inputs: a changed pixel invalidates the property cache, ``--no-cache``
replaces the entry, manifests cannot reach outside their folder, and bad files or values are one
line naming the file, never a traceback or a silent fix."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from lightning_dims.cli import main
from lightning_dims.data import DatasetTask


def write_png(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def csv_dataset(root, rng, n_per_class: int = 12, size: int = 8) -> list:
    """``root/manifest.csv`` with two classes of random gray images; returns the rows."""
    rows = []
    for label in (0, 1):
        for i in range(n_per_class):
            name = f"img/{label}_{i}.png"
            write_png(root / name, rng.integers(0, 256, (size, size)) // (1 + label))
            rows.append((name, label))
    (root / "manifest.csv").write_text("path,label\n" + "".join(f"{p},{lab}\n" for p, lab in rows))
    return rows


def measure(root, capsys, *extra: str) -> tuple[int, dict | str]:
    code = main(["measure", "--dataset", "csv", "--data-root", str(root), "--n", "16", "--val-size", "0",
                 "--test-size", "0", "--img-size", "8", "--k", "5", "--m", "16", "--json", *extra])  # fmt: skip
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else captured.err.strip())


def test_a_changed_pixel_invalidates_the_cache_and_no_cache_replaces_the_entry(tmp_path, rng, capsys):
    rows = csv_dataset(tmp_path, rng)
    code, first = measure(tmp_path, capsys)
    assert code == 0 and not first["cached"]
    assert measure(tmp_path, capsys)[1]["cached"]

    # overwrite one training image with other pixels, same size and name
    (name, _), other = rows[0], rows[len(rows) // 2]
    stat = os.stat(tmp_path / name)
    twin = np.asarray(Image.open(tmp_path / other[0]))
    write_png(tmp_path / name, twin)  # now identical to an image of the other class
    os.utime(tmp_path / name, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime
    code, second = measure(tmp_path, capsys)
    assert code == 0 and not second["cached"] and second["fingerprint"] != first["fingerprint"]
    task = DatasetTask("csv", train_size=16, val_size=0, test_size=0, size=8, data_root=tmp_path)
    x, y = task.images("train"), task.labels("train")
    assert second["label_sharpness"] != first["label_sharpness"]
    assert second["n"] == x.shape[0] == 16 and int(y.sum()) == 8

    # --no-cache computes afresh and replaces the entry: the next plain call is served the new one
    from lightning_dims.data import property_cache

    entry = property_cache.entry_path(second["fingerprint"])
    stale = json.loads(entry.read_text()) | {"label_sharpness": 123.0}
    entry.write_text(json.dumps(stale))
    assert measure(tmp_path, capsys)[1]["label_sharpness"] == 123.0
    code, fresh = measure(tmp_path, capsys, "--no-cache")
    assert fresh["label_sharpness"] == pytest.approx(second["label_sharpness"]) and not fresh["cached"]
    assert measure(tmp_path, capsys)[1]["label_sharpness"] == pytest.approx(second["label_sharpness"])


def test_an_image_under_two_labels_is_named_and_counted(tmp_path, rng, capsys):
    rows = csv_dataset(tmp_path, rng)
    first = rows[0][0]
    manifest = (tmp_path / "manifest.csv").read_text() + f"{first},1\n"  # the same file listed again as class 1
    (tmp_path / "manifest.csv").write_text(manifest)
    code = main(["measure", "--dataset", "csv", "--data-root", str(tmp_path), "--n", "24", "--val-size", "0",
                 "--test-size", "0", "--img-size", "8", "--k", "5", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    record = json.loads(captured.out)
    assert record["label_conflicts"]["count"] == 1
    (pair,) = record["label_conflicts"]["examples"]
    assert {os.path.basename(p) for p in pair} == {os.path.basename(first)}
    assert "under two labels" in captured.err and first.split("/")[-1] in captured.err


@pytest.mark.parametrize("row", ["../outside.png", "/etc/passwd", "link/escape.png"])
def test_manifest_paths_must_stay_inside_the_dataset_folder(tmp_path, rng, capsys, row):
    root = tmp_path / "dataset"
    csv_dataset(root, rng)
    write_png(tmp_path / "outside.png", rng.integers(0, 256, (8, 8)))
    (root / "link").mkdir()
    (root / "link" / "escape.png").symlink_to(tmp_path / "outside.png")
    with open(root / "manifest.csv", "a") as handle:
        handle.write(f"{row},0\n")
    code, err = measure(root, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "resolve outside the dataset folder" in err and "allow_outside" in err
    code, record = measure(root, capsys, "--option", "allow_outside=true") if row != "/etc/passwd" else (None, None)
    if row != "/etc/passwd":
        assert code == 0 and record["options"]["allow_outside"] is True


@pytest.mark.parametrize(
    "broken, message",
    [
        ("inf", "NaN or inf"),
        ("nan", "NaN or inf"),
        ("corrupt", "not a readable image"),
        ("empty_csv", "is empty"),
        ("header_only", "lists no images"),
    ],
)
def test_bad_files_are_one_line_naming_the_file(tmp_path, rng, capsys, broken, message):
    rows = csv_dataset(tmp_path, rng)
    victim = tmp_path / rows[0][0]
    if broken in ("inf", "nan"):
        array = np.full((8, 8), np.inf if broken == "inf" else np.nan, dtype=np.float32)
        np.save(victim.with_suffix(".npy"), array)
        text = (tmp_path / "manifest.csv").read_text().replace(rows[0][0], rows[0][0].replace(".png", ".npy"))
        (tmp_path / "manifest.csv").write_text(text)
        victim = victim.with_suffix(".npy")
    elif broken == "corrupt":
        victim.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    elif broken == "empty_csv":
        (tmp_path / "manifest.csv").write_text("")
    else:
        (tmp_path / "manifest.csv").write_text("path,label\n")
    code = main(["measure", "--dataset", "csv", "--data-root", str(tmp_path), "--n", "24", "--val-size", "0",
                 "--test-size", "0", "--img-size", "8", "--k", "5", "--json"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("lightning-dims measure: error:"), err
    assert message in err[0]
    if broken in ("inf", "nan", "corrupt"):
        assert victim.name in err[0]


@pytest.mark.parametrize("n", ["0", "1"])
def test_measure_with_too_few_images_is_one_line(capsys, n):
    assert main(["measure", "--dataset", "digits", "--n", n, "--img-size", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--n" in err[0]
