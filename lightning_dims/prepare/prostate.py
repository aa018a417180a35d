"""Prostate-MRI-US-Biopsy: central frames of the biopsy ultrasound volumes, UCLA score >= 2 vs < 2.

Download (TCIA, Prostate-MRI-US-Biopsy): the images with the NBIA Data Retriever using the "Classic
Directory Name" convention (``manifest-<n>/Prostate-MRI-US-Biopsy/<Patient ID>/<study UID>/<series
UID>/*.dcm``) and the "Target Data" table saved as CSV (columns ``Patient ID``,
``seriesInstanceUID_US``, ``UCLA Score (Similar to PIRADS v2)``).

The authors' procedure (mazurowski-lab/radiologyintrinsicmanifolds, ``data/prostate/png_extractor.ipynb``
and ``src/dataset.py``), re-implemented:

* every row of the target table names an ultrasound series (``seriesInstanceUID_US``) of its patient;
  that multi-frame volume's frames ``n // 4 .. 3n // 4 - 1`` (``range(n // 4, 3 * n // 4)``) are images;
* each frame: stored values scaled by 255 / its own max, resized to 224 x 224 (skimage's resize),
  truncated to uint8, inverted for MONOCHROME1;
* label: UCLA score >= 2 (``--threshold``) positive, below negative;
* a series named by several target rows (several biopsy targets) is written once per row, labelled
  by that row's score, as the authors' loop did (``--series-label rows``); ``--series-label max``
  writes each series once, labelled by its highest score, which avoids duplicate images.

Deviations: a series is matched by its folder name being the series UID (the authors matched the
UID as a substring of the path); a series stored as single-frame files is stacked by
InstanceNumber; colour frames are converted to luminance (skimage's rgb2gray weights, which the
authors' loader applied on reading); blank frames and missing series are reported.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_dims.prepare.dicom import (
    authors_image,
    frames,
    is_monochrome1,
    read_dicom,
)
from lightning_dims.prepare.imaging import write_image
from lightning_dims.prepare.registry import (
    Context,
    Option,
    PrepareError,
    Preparer,
    register_preparer,
    size_option,
)
from lightning_dims.prepare.sources import find_file, read_table, relative
from lightning_dims.prepare.tasks import BadFile, Issue, Plan, Task, TaskResult

__all__ = ["COLUMNS", "PREPARER", "SCORE", "convert", "fraction", "frame_range", "plan", "series_folders"]

SCORE = "UCLA Score (Similar to PIRADS v2)"
COLUMNS = ("Patient ID", "seriesInstanceUID_US", SCORE)


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be a fraction in [0, 1], got {value}")
    return value


def frame_range(count: int, start: float, stop: float) -> range:
    """Frames ``floor(count * start) .. floor(count * stop) - 1``; the authors' ``range(n // 4, 3 * n // 4)`` at 0.25, 0.75."""
    return range(math.floor(count * start), math.floor(count * stop))


def series_folders(source: Path, wanted: set[str]) -> dict[str, Path]:
    """Series UID -> the folder of that name under ``source`` (one walk over the tree)."""
    found = {}
    for folder, subfolders, _ in os.walk(source):
        for name in subfolders:
            if name in wanted:
                found.setdefault(name, Path(folder) / name)
    return found


def plan(source: Path, options: dict) -> Plan:
    targets_path = find_file(source, options["targets"], ("Target*Data*.csv", "*arget*.csv", "Target*Data*.xlsx"), "--targets", "target table")
    targets = read_table(targets_path, COLUMNS, "target table", dtype={"Patient ID": str, "seriesInstanceUID_US": str})
    if options["frame_start"] >= options["frame_stop"]:
        raise PrepareError(f"--frame-start {options['frame_start']} must be below --frame-stop {options['frame_stop']}")
    shown = targets_path.name
    targets = targets.rename(columns={"Patient ID": "patient", "seriesInstanceUID_US": "series", SCORE: "raw_score"})
    targets = targets.assign(score=pd.to_numeric(targets["raw_score"], errors="coerce"), line=np.arange(len(targets)) + 2)
    folders = series_folders(source, set(targets["series"].dropna().str.strip()))
    issues, usable = [], []
    for row in targets.itertuples(index=False):
        series = row.series.strip() if isinstance(row.series, str) else ""
        patient = str(row.patient).strip()
        where = f"{shown}:line {row.line}"
        if np.isnan(row.score):
            issues.append(Issue("unexpected", "no UCLA score", where, str(row.raw_score)))
        elif series not in folders:
            issues.append(Issue("unexpected", "ultrasound series not found", where, series or "no seriesInstanceUID_US"))
        elif patient not in folders[series].parts:
            issues.append(Issue("unexpected", "series outside its patient's folder", where, relative(folders[series], source)))
        else:
            usable.append((int(row.line), patient, series, float(row.score)))
    groups = {}
    for line, patient, series, score in usable:
        key = f"line{line:05d}" if options["series_label"] == "rows" else series
        groups.setdefault(key, []).append((line, patient, series, score))
    tasks = []
    for key, members in groups.items():
        _, patient, series, _ = members[0]
        score = max(member[3] for member in members)
        label = int(score >= options["threshold"])
        folder = relative(folders[series], source)
        payload = {"tag": key, "patient": patient, "series_uid": series, "folder": folder, "score": score, "label": label, "lines": [m[0] for m in members]}
        tasks.append(Task(key, payload, label, folder))
    return Plan(tasks, issues)


def convert(payload: dict, context: Context) -> TaskResult:
    folder = context.source / payload["folder"]
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    if not files:
        raise BadFile("empty series folder")
    datasets = [read_dicom(path) for path in files]
    volume = frames(datasets)
    options = context.options
    monochrome1 = is_monochrome1(datasets[0])
    rows, issues = [], []
    for index in frame_range(len(volume), options["frame_start"], options["frame_stop"]):
        where = f"{payload['folder']}#frame{index}"
        try:
            image, notes = authors_image(volume[index], options["size"], monochrome1, where, "frame")
        except BadFile as error:
            issues.append(Issue("bad", error.reason, where, error.detail))
            continue
        issues += notes
        path = f"images/{payload['patient']}/{payload['tag']}_{index:04d}.png"
        write_image(context.out / path, image)
        rows.append(
            {
                "path": path,
                "label": payload["label"],
                "patient_id": payload["patient"],
                "series_uid": payload["series_uid"],
                "frame_index": index,
                "n_frames": len(volume),
                "ucla_score": payload["score"],
                "target_lines": " ".join(map(str, payload["lines"])),
                "source": payload["folder"],
            }
        )
    return TaskResult(rows=rows, issues=issues)


PREPARER = register_preparer(
    Preparer(
        name="prostate",
        title="Prostate-MRI-US-Biopsy ultrasound frames, UCLA score >= 2 vs < 2",
        obtain="https://www.cancerimagingarchive.net/collection/prostate-mri-us-biopsy/ (TCIA: NBIA Data Retriever with 'Classic Directory Name'; Target Data saved as CSV)",
        source="a folder holding the manifest-*/Prostate-MRI-US-Biopsy/ DICOM tree and the Target Data table",
        options=(
            Option("targets", None, "the target table (default: Target*Data*.csv under --source)", location=True),
            Option("threshold", 2.0, "UCLA score at or above which a target is positive", float),
            Option("series_label", "rows", "rows: one copy of a series per target row, labelled by that row; max: each series once, by its highest score", choices=("rows", "max")),
            Option("frame_start", 0.25, "first frame as a fraction of the frame count n (0.25: n // 4)", fraction),
            Option("frame_stop", 0.75, "end of the frame range as a fraction of n, exclusive (0.75: 3n // 4)", fraction),
            size_option(224),
        ),
        plan=plan,
        convert=convert,
        columns=("series_uid", "frame_index", "n_frames", "ucla_score", "target_lines", "source"),
        doc="docs/datasets/prostate.md",
    )
)
