"""MURA: musculoskeletal radiographs, abnormal vs normal, every training image as downloaded.

Download (Stanford ML Group, research use agreement): ``MURA-v1.1/`` with ``train_image_paths.csv``
(one path per line, no header: ``MURA-v1.1/train/XR_<part>/patient<n>/study<m>_<positive|negative>/
image<k>.png``) and ``valid_image_paths.csv``.

The authors' procedure (mazurowski-lab/radiologyintrinsicmanifolds, ``src/dataset.py``), re-implemented:
every image listed in ``train_image_paths.csv``; label 0 when its path contains ``negative``, else
1 when it contains ``positive`` (on MURA's paths only the study folder names an outcome, so this is
the dataset's rule :func:`~lightning_dims.data.manifest.mura_label`: the study folder's suffix); the
PNGs used unchanged (copied byte for byte).

Deviations: a listed path with neither word, a missing file or one that does not decode is
reported instead of failing the run; ``--split valid`` and ``--per-class`` are offered.
"""

from __future__ import annotations

import re
from pathlib import Path

from lightning_dims.data.manifest import PATIENT_FOLDER_PATTERN, mura_label
from lightning_dims.prepare.copying import convert_copy, copy_task
from lightning_dims.prepare.registry import (
    SEED_OPTION,
    Option,
    Preparer,
    per_class_option,
    register_preparer,
)
from lightning_dims.prepare.sources import (
    find_file,
    listed_file,
    read_table,
    relative,
    within_download,
)
from lightning_dims.prepare.tasks import Issue, Plan, Task

__all__ = ["PATIENT", "PREPARER", "STUDY", "plan"]

PATIENT = re.compile(PATIENT_FOLDER_PATTERN)
STUDY = re.compile(r"study\d+_(?:positive|negative)")


def plan(source: Path, options: dict) -> Plan:
    split = options["split"]
    table = find_file(source, options["paths"], (f"{split}_image_paths.csv",), "--paths", f"MURA path list ({split}_image_paths.csv)")
    frame = read_table(table, ("path",), "path list", header=None, names=["path"], dtype=str)
    tasks, issues = [], []
    shown = relative(table, source)
    for listed in frame["path"].dropna():
        label = mura_label(listed)
        if label is None:
            issues.append(Issue("unexpected", "path names neither positive nor negative", f"{shown}:{listed}"))
            continue
        inside = within_download(table, listed)
        patient, study = PATIENT.search(listed), STUDY.search(listed)
        row = {
            "path": f"images/{inside}",
            "label": label,
            "patient_id": patient[0] if patient else inside,
            "study": study[0] if study else "",
            "source": listed,
        }
        file = relative(listed_file(table, listed), source)
        tasks.append(Task(listed, copy_task(file, row), label, file))
    return Plan(tasks, issues, per_class=options["per_class"], seed=options["seed"])


PREPARER = register_preparer(
    Preparer(
        name="mura",
        title="MURA musculoskeletal radiographs, abnormal vs normal",
        obtain="https://stanfordmlgroup.github.io/competitions/mura/ (research use agreement; MURA-v1.1.zip)",
        source="the MURA-v1.1 folder (or its parent): train_image_paths.csv and train/XR_*/patient*/study*_{positive,negative}/image*.png",
        options=(
            Option("split", "train", "which path list: train or valid", choices=("train", "valid")),
            Option("paths", None, "the path list (default: <split>_image_paths.csv under --source)", location=True),
            per_class_option(0),
            SEED_OPTION,
        ),
        plan=plan,
        convert=convert_copy,
        columns=("study", "source"),
        doc="docs/datasets/mura.md",
    )
)
