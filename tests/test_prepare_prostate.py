"""Prostate-MRI-US-Biopsy from a TCIA classic-layout fixture: multi-frame ultrasound, frames n//4 .. 3n//4, UCLA >= 2."""

from __future__ import annotations

import numpy as np
from tests.helpers.official_layouts import (
    MR_STORAGE,
    US_MULTIFRAME_STORAGE,
    measure_json,
    read_manifest_rows,
    read_png,
    reasons,
    run_prepare,
    write_csv,
    write_dicom,
)

from lightning_dims.prepare.prostate import frame_range

COLLECTION = "manifest-1599764098812/Prostate-MRI-US-Biopsy"
SIZE = 16
SCORE = "UCLA Score (Similar to PIRADS v2)"


def series_folder(root, patient: int, series: str):
    return root / COLLECTION / f"Prostate-MRI-US-Biopsy-{patient:04d}" / f"1.3.6.1.4.1.14519.5.2.1.{patient}0" / series


def make_prostate(root, rng):
    """Returns {series uid: (frames (n, rows, cols), monochrome1)}."""
    volumes = {}
    for patient, count, mono1 in ((1, 10, False), (2, 9, True)):
        series = f"1.3.6.1.4.1.14519.5.2.1.{patient}1"
        volume = rng.integers(0, 256, (count, 20, 20)).astype(np.uint8)
        write_dicom(series_folder(root, patient, series) / "1-1.dcm", volume, patient=f"Prostate-MRI-US-Biopsy-{patient:04d}",
                    sop_class=US_MULTIFRAME_STORAGE, photometric="MONOCHROME1" if mono1 else "MONOCHROME2", spacing=None, series_uid=series)  # fmt: skip
        volumes[series] = (volume, mono1)
        for number in (1, 2):  # an MR series of the same patient, never named by the target table
            write_dicom(series_folder(root, patient, f"1.3.6.1.4.1.14519.5.2.1.{patient}9") / f"1-{number}.dcm", rng.integers(0, 900, (20, 20)).astype(np.uint16), sop_class=MR_STORAGE)
    series = "1.3.6.1.4.1.14519.5.2.1.31"  # a volume stored as single-frame files, written out of order
    volume = rng.integers(1, 256, (8, 20, 20)).astype(np.uint8)
    for instance in (5, 2, 8, 1, 7, 3, 6, 4):
        write_dicom(series_folder(root, 3, series) / f"1-{instance:02d}.dcm", volume[instance - 1], sop_class=MR_STORAGE, series_uid=series, instance=instance, spacing=None)
    volumes[series] = (volume, False)
    write_dicom(series_folder(root, 4, "1.3.6.1.4.1.14519.5.2.1.41") / "1-1.dcm", rng.integers(0, 256, (20, 20)).astype(np.uint8), sop_class=MR_STORAGE)
    table = [
        ["Prostate-MRI-US-Biopsy-0001", "1.3.6.1.4.1.14519.5.2.1.11", 1],
        ["Prostate-MRI-US-Biopsy-0001", "1.3.6.1.4.1.14519.5.2.1.11", 3],
        ["Prostate-MRI-US-Biopsy-0002", "1.3.6.1.4.1.14519.5.2.1.21", 2],
        ["Prostate-MRI-US-Biopsy-0003", "1.3.6.1.4.1.14519.5.2.1.31", 0],
        ["Prostate-MRI-US-Biopsy-0004", "1.3.6.1.4.1.14519.5.2.1.41", 4],
        ["Prostate-MRI-US-Biopsy-0005", "1.3.6.1.4.1.14519.5.2.1.51", 3],
        ["Prostate-MRI-US-Biopsy-0002", "1.3.6.1.4.1.14519.5.2.1.21", ""],
    ]
    write_csv(root / "manifest-1599764098812" / "Target Data_2019-12-05.csv", ["Patient ID", "Study Date", "seriesInstanceUID_US", SCORE],
              [[patient, "20190101", series, score] for patient, series, score in table])  # fmt: skip
    return volumes


def skimage_frame(frame: np.ndarray, monochrome1: bool) -> np.ndarray:
    from skimage.transform import resize

    image = resize(frame.astype(float) * 255.0 / frame.max(), (SIZE, SIZE)).astype(np.uint8)
    return np.invert(image) if monochrome1 else image


def test_frame_range_is_the_authors_central_half():
    for count in range(1, 200):
        assert frame_range(count, 0.25, 0.75) == range(count // 4, (3 * count) // 4)


def test_prostate_frames_labels_duplicates_per_target_row(tmp_path, rng, capsys):
    volumes = make_prostate(tmp_path / "tcia", rng)
    out = tmp_path / "data" / "prostate"
    code, _, stderr = run_prepare(capsys, "prostate", "--source", str(tmp_path / "tcia"), "--out", str(out), "--size", str(SIZE))
    assert code == 0, stderr
    rows = read_manifest_rows(out)
    by_line = {}
    for row in rows:
        by_line.setdefault(row["target_lines"], []).append(row)
        volume, mono1 = volumes[row["series_uid"]]
        assert int(row["n_frames"]) == len(volume)
        assert np.array_equal(read_png(out / row["path"]), skimage_frame(volume[int(row["frame_index"])], mono1))
    frames = {line: sorted(int(row["frame_index"]) for row in members) for line, members in by_line.items()}
    assert frames == {"2": [2, 3, 4, 5, 6], "3": [2, 3, 4, 5, 6], "4": [2, 3, 4, 5], "5": [2, 3, 4, 5]}
    labels = {line: {row["label"] for row in members} for line, members in by_line.items()}
    assert labels == {"2": {"0"}, "3": {"1"}, "4": {"1"}, "5": {"0"}}
    assert {row["patient_id"] for row in by_line["4"]} == {"Prostate-MRI-US-Biopsy-0002"}
    assert list(reasons(out, "bad")) == ["not a multi-frame series"]
    assert reasons(out, "unexpected") == {
        "ultrasound series not found": ["Target Data_2019-12-05.csv:line 7"],
        "no UCLA score": ["Target Data_2019-12-05.csv:line 8"],
    }
    record = measure_json(capsys, "prostate", tmp_path / "data", n=8, test=0)
    assert record["n"] == 8


def test_prostate_series_label_max_writes_each_series_once(tmp_path, rng, capsys):
    make_prostate(tmp_path / "tcia", rng)
    out = tmp_path / "prostate"
    code, _, stderr = run_prepare(capsys, "prostate", "--source", str(tmp_path / "tcia"), "--out", str(out), "--size", str(SIZE), "--series-label", "max")
    assert code == 0, stderr
    first = [row for row in read_manifest_rows(out) if row["patient_id"] == "Prostate-MRI-US-Biopsy-0001"]
    assert len(first) == 5 and {(row["label"], row["ucla_score"], row["target_lines"]) for row in first} == {("1", "3.0", "2 3")}
