"""CheXpert: chest radiographs, pleural effusion vs not, 10,000 per class from ``train.csv``.

Download (Stanford ML Group, research use agreement): ``CheXpert-v1.0/`` with ``train.csv`` (column
``Path`` = ``CheXpert-v1.0/train/patient<n>/study<m>/view<k>_<frontal|lateral>.jpg`` and one column
per finding: 1 positive, 0 negative, -1 uncertain, blank not mentioned). The downsampled
``CheXpert-v1.0-small`` has the same layout.

The authors' procedure (mazurowski-lab/radiologyintrinsicmanifolds, ``data/chexpert/make_subset.ipynb``
and ``src/dataset.py``), re-implemented:

* positive: ``Pleural Effusion == 1``; negative: blank **or -1 (uncertain)**. Explicit 0s were not
  used (``--negatives blank,-1``). ``--negatives blank,0`` gives the rule most readers expect
  (uncertain dropped), which lightning-dims used for hand-made manifests before;
* 10,000 images per class drawn at random from ``train.csv`` (all views; seeded here);
* the JPEGs are used unchanged (copied byte for byte).

Deviations: a listed file that is missing or does not decode is reported and replaced by the next
draw (the authors' copy would have failed).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_dims.data.manifest import PATIENT_FOLDER_PATTERN
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

__all__ = ["PATIENT", "PREPARER", "VALUES", "finding_class", "negatives", "plan"]

PATIENT = re.compile(PATIENT_FOLDER_PATTERN)
VALUES = ("blank", "0", "-1")


def negatives(text: str) -> str:
    """``"blank,-1"`` -> the canonical comma-separated subset of :data:`VALUES`."""
    parts = {part.strip() for part in text.split(",") if part.strip()}
    unknown = parts - set(VALUES)
    if unknown or not parts:
        raise ValueError(f"takes a comma-separated subset of {', '.join(VALUES)}, got {text!r}")
    return ",".join(value for value in VALUES if value in parts)


def finding_class(value: float, negative_values: set[str]) -> int | None:
    """1 for 1; 0 when the value's name (blank, 0, -1) is a negative; None (unused) otherwise."""
    if value == 1:
        return 1
    name = "blank" if np.isnan(value) else {0.0: "0", -1.0: "-1"}.get(float(value))
    return 0 if name in negative_values else None


def plan(source: Path, options: dict) -> Plan:
    table = find_file(source, options["labels"], ("train.csv",), "--labels", "CheXpert label table (train.csv)")
    finding = options["finding"]
    frame = read_table(table, ("Path", finding), "label table", dtype={"Path": str})
    values = pd.to_numeric(frame[finding], errors="coerce")
    wanted = set(options["negatives"].split(","))
    tasks, issues, counts = [], [], {"rows not used by the label rule": 0}
    shown = relative(table, source)
    for listed, raw, value, view in zip(frame["Path"], frame[finding], values, frame.get("Frontal/Lateral", pd.Series([""] * len(frame)))):
        if not pd.isna(raw) and value not in (1.0, 0.0, -1.0):
            issues.append(Issue("unexpected", f"{finding} value not 1, 0, -1 or blank", f"{shown}:{listed}", str(raw)))
            continue
        label = finding_class(value, wanted)
        if label is None:
            counts["rows not used by the label rule"] += 1
            continue
        patient = PATIENT.search(listed)
        inside = within_download(table, listed)
        row = {
            "path": f"images/{inside}",
            "label": label,
            "patient_id": patient[0] if patient else inside,
            "finding_value": "" if np.isnan(value) else int(value),
            "view": "" if pd.isna(view) else str(view),
            "source": listed,
        }
        file = relative(listed_file(table, listed), source)
        tasks.append(Task(listed, copy_task(file, row), label, file))
    return Plan(tasks, issues, counts, per_class=options["per_class"], seed=options["seed"])


PREPARER = register_preparer(
    Preparer(
        name="chexpert",
        title="CheXpert chest radiographs, pleural effusion vs not",
        obtain="https://stanfordmlgroup.github.io/competitions/chexpert/ (research use agreement; CheXpert-v1.0 or CheXpert-v1.0-small)",
        source="the CheXpert-v1.0 folder (or its parent): train.csv and train/patient*/study*/view*.jpg",
        options=(
            Option("labels", None, "the label table (default: train.csv under --source)", location=True),
            Option("finding", "Pleural Effusion", "the finding column that is the label"),
            Option("negatives", "blank,-1", "finding values counted negative, a subset of blank,0,-1", negatives),
            per_class_option(10000),
            SEED_OPTION,
        ),
        plan=plan,
        convert=convert_copy,
        columns=("finding_value", "view", "source"),
        doc="docs/datasets/chexpert.md",
    )
)
