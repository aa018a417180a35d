"""OAI: knee radiograph crops, Kellgren-Lawrence grade 0-1 vs 2-4, from your crops and ``kxr_sq_bu00.txt``.

Download (NIMH Data Archive, OAI data use agreement): the baseline images (OAIBaselineImages,
package 0.E.1) and the semi-quantitative reading table ``kxr_sq_bu00.txt`` (pipe-separated; columns
``ID``, ``SIDE`` (1 right, 2 left), ``READPRJ``, ``V00XRKL``).

**The knee crops are not made here.** The authors cropped each knee from the bilateral radiograph
with a YOLOv3-tiny knee detector (``data/oai/detect_knee/kl_process.py``, 672 x 672 boxes) whose
weights (``best_finalversion.pt``) are not public. Bring your own crops, named like the authors':
``<ID>_<R|L>.<png|jpg|tif>`` (anywhere under ``--source``; their ``0/`` and ``1/`` folders are fine).

The authors' procedure (``generate_cls_label.ipynb``, ``kl_process.py``), re-implemented for the
labels: the grade of a knee is ``V00XRKL`` of the first row with its ``ID``, its ``SIDE`` and
``READPRJ == 15``; 0-1 is class 0, 2-4 class 1; knees without a grade are skipped (here: reported).
The crops are used unchanged (copied byte for byte).

Deviations: a crop in a ``0/`` or ``1/`` folder that disagrees with the table is labelled by the
table and reported (``note``); crops of the same knee twice are reported and the first kept.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from lightning_dims.prepare.copying import convert_copy, copy_task
from lightning_dims.prepare.registry import (
    SEED_OPTION,
    Option,
    PrepareError,
    Preparer,
    per_class_option,
    register_preparer,
)
from lightning_dims.prepare.sources import find_file, read_table, relative
from lightning_dims.prepare.tasks import Issue, Plan, Task

__all__ = ["CROP", "PREPARER", "SIDES", "plan", "read_grades"]

CROP = re.compile(r"^(?P<id>\d+)_(?P<side>[RL])\.(?:png|jpe?g|tiff?|bmp)$", re.IGNORECASE)
SIDES = {"R": 1, "L": 2}
"""Crop-name side -> the table's SIDE code."""


def read_grades(path: Path, column: str, project: int) -> dict[tuple[str, int], float]:
    """(ID, SIDE) -> KL grade from the first row with ``READPRJ == project`` (NaN where the cell is not a number)."""
    frame = read_table(path, (), "KL grade table", sep="|", dtype=str)
    frame.columns = [str(name).strip().upper() for name in frame.columns]
    missing = [name for name in ("ID", "SIDE", "READPRJ", column.upper()) if name not in frame.columns]
    if missing:
        raise PrepareError(f"{path}: the KL grade table lacks column(s) {missing}; columns found: {list(frame.columns)[:12]}")
    frame = frame[pd.to_numeric(frame["READPRJ"], errors="coerce") == project]
    frame = frame.assign(side=pd.to_numeric(frame["SIDE"], errors="coerce"), grade=pd.to_numeric(frame[column.upper()], errors="coerce"))
    frame = frame.dropna(subset=["side"]).drop_duplicates(["ID", "side"], keep="first")
    return {(str(identifier).strip(), int(side)): grade for identifier, side, grade in zip(frame["ID"], frame["side"], frame["grade"])}


def plan(source: Path, options: dict) -> Plan:
    table = find_file(source, options["kl"], ("kxr_sq_bu00.txt", "kxr_sq_bu*.txt"), "--kl", "KL grade table (kxr_sq_bu00.txt)")
    grades = read_grades(table, options["kl_column"], options["readprj"])
    tasks, issues, seen = [], [], set()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".") and p != table):
        shown = relative(path, source)
        match = CROP.match(path.name)
        if match is None:
            issues.append(Issue("unexpected", "not a crop named <ID>_<R|L>.<png|jpg|tif>", shown))
            continue
        knee = (match["id"], SIDES[match["side"].upper()])
        if knee in seen:
            issues.append(Issue("unexpected", "second crop of the same knee", shown))
            continue
        seen.add(knee)
        grade = grades.get(knee)
        if grade is None or grade not in (0, 1, 2, 3, 4):
            reason = f"no {options['kl_column']} grade (READPRJ {options['readprj']})" if grade is None or pd.isna(grade) else "grade not 0-4"
            issues.append(Issue("unexpected", reason, shown, "" if grade is None else str(grade)))
            continue
        label = int(grade >= options["threshold"])
        if path.parent.name in ("0", "1") and int(path.parent.name) != label:
            issues.append(Issue("note", "crop folder disagrees with the KL grade; labelled by the grade", shown, f"KL {int(grade)}"))
        side = match["side"].upper()
        row = {
            "path": f"images/{match['id']}_{side}{path.suffix.lower()}",
            "label": label,
            "patient_id": match["id"],
            "side": side,
            "kl_grade": int(grade),
            "source": shown,
        }
        tasks.append(Task(f"{match['id']}_{side}", copy_task(shown, row), label, shown))
    if not tasks and not issues:
        raise PrepareError(f"no knee crops under {source}; this prepare needs your crops named <ID>_<R|L>.png (the authors' detector weights are not public)")
    return Plan(tasks, issues, per_class=options["per_class"], seed=options["seed"])


PREPARER = register_preparer(
    Preparer(
        name="oai",
        title="OAI knee radiograph crops, KL grade >= 2 vs < 2 (crops: yours)",
        obtain="https://nda.nih.gov/oai (data use agreement): OAIBaselineImages (0.E.1) and kxr_sq_bu00.txt; knee crops you make (the authors' detector weights are not public)",
        source="a folder holding your knee crops named <ID>_<R|L>.png (any depth) and kxr_sq_bu00.txt",
        options=(
            Option("kl", None, "the KL grade table (default: kxr_sq_bu00.txt under --source)", location=True),
            Option("kl_column", "V00XRKL", "the grade column (V00XRKL: baseline visit)"),
            Option("readprj", 15, "the reading project whose grades are used", int),
            Option("threshold", 2, "grade at or above which a knee is positive", int),
            per_class_option(0),
            SEED_OPTION,
        ),
        plan=plan,
        convert=convert_copy,
        columns=("side", "kl_grade", "source"),
        doc="docs/datasets/oai.md",
    )
)
