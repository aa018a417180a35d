"""Did each run learn, did its last epoch hold, and does d_repr stay under d_data?

Per run (final weights on the test set, ``test``; best-validation weights, ``test_best``):

* **learned**: test accuracy at least ``chance + LEARNED_MARGIN`` (chance = 1 / classes: the test
  sets are class-balanced), i.e. 0.65 for the binary tasks;
* **miscalibrated**: accuracy within ``CHANCE_BAND`` of chance while AUROC >= ``RANKS_WELL``: the
  network ranks the test images well but its decision threshold is off (what stale batch-norm
  statistics after a few steps look like);
* **final epoch worse**: the final weights' test loss exceeds the best-validation weights' by more
  than ``FINAL_WORSE_RATIO`` times (needs ``test_best``): the run ended on an unstable epoch and
  its final loss overstates what it learned.

**The health rule** (declared before the verdicts; :func:`excluded_runs`): a run is excluded from
the verdicts' second reading when it did not learn (*not learned*, or no test accuracy), or when
its test set differs in size from the arch's most common one (its task is off the scope's
protocol: BreastMNIST's test set of 100 images against 500). Every verdict is shown with all runs
and without the excluded ones, and the excluded runs are listed with their reason.

**Representation bound** (paper.md §1, §2.3): per layer, how many runs have ``d_repr <= d_data``,
with d_data of that run's own training set (the images the representation was learned from).
Runs of one task are not independent (they share its data; in the stored reproduction the
failures cluster: 4/4, 5/5, 2/4 ... per task), so the unit is the task: the count of runs per
task, the tasks where the bound holds in every run (a Clopper-Pearson interval over tasks,
which are independent), and the fraction of runs with a whole-task bootstrap interval
(:func:`lightning_dims.analysis.stats.group_bootstrap`). No interval treats runs as independent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from lightning_dims.analysis.rows import RunRow
from lightning_dims.analysis.stats import FitError, GroupBootstrap, Proportion, group_bootstrap, proportion, weighted_mean
from lightning_dims.analysis.tasks import positive

__all__ = [
    "CHANCE_BAND",
    "FINAL_WORSE_RATIO",
    "LEARNED_MARGIN",
    "PENULTIMATE_LAYERS",
    "RANKS_WELL",
    "ReprBound",
    "chance",
    "excluded_runs",
    "learned",
    "representation_bound",
    "run_flags",
]

LEARNED_MARGIN = 0.15
CHANCE_BAND = 0.1
RANKS_WELL = 0.8
FINAL_WORSE_RATIO = 1.5
PENULTIMATE_LAYERS = ("layer4", "classifier.3")
"""The paper's d_repr layers (ResNet, VGG; ``lightning_dims.models.registry``), listed first."""


def chance(row: RunRow) -> float:
    return 1.0 / max(2, row.num_classes)


def learned(row: RunRow) -> bool:
    return row.test_acc is not None and row.test_acc >= chance(row) + LEARNED_MARGIN


def run_flags(row: RunRow) -> list[str]:
    """The health flags of one run (empty when it learned and its last epoch held)."""
    flags = []
    if row.test_acc is None:
        return ["no test accuracy"]
    if not learned(row):
        flags.append("not learned")
    if abs(row.test_acc - chance(row)) <= CHANCE_BAND and (row.test_auroc or 0) >= RANKS_WELL:
        flags.append("miscalibrated")
    if positive(row.best_loss) and positive(row.test_loss) and row.test_loss > FINAL_WORSE_RATIO * row.best_loss:
        flags.append("final epoch worse")
    return flags


def excluded_runs(rows: Sequence[RunRow]) -> dict[str, str]:
    """run id -> why the health rule (module docstring) excludes it from the verdicts' second reading."""
    out = {}
    for arch in {r.arch for r in rows}:
        mine = [r for r in rows if r.arch == arch]
        sizes = Counter(r.n_test for r in mine if r.n_test is not None)
        usual = sizes.most_common(1)[0][0] if sizes else None
        for row in mine:
            reasons = []
            if usual is not None and row.n_test is not None and row.n_test != usual:
                reasons.append(f"off protocol (test set of {row.n_test} images; most runs {usual})")
            if not learned(row):
                reasons.append("no test accuracy" if row.test_acc is None else
                               f"not learned (test accuracy {row.test_acc:.3f} < {chance(row) + LEARNED_MARGIN:.2f})")
            if reasons:
                out[row.run_id] = "; ".join(reasons)
    return out


@dataclass(frozen=True)
class ReprBound:
    """``d_repr <= d_data`` in one layer: runs below per task, tasks below in every run, the run fraction."""

    arch: str
    layer: str
    estimator: str | None
    source: str | None
    runs_below: int
    n_runs: int
    per_task: tuple[tuple[str, int, int], ...]
    tasks_always_below: Proportion
    run_fraction_bootstrap: GroupBootstrap | None
    runs_above: tuple[str, ...]

    @property
    def n_tasks(self) -> int:
        return len(self.per_task)


def representation_bound(rows: Sequence[RunRow]) -> list[ReprBound]:
    """Per (arch, layer), the paper's layer first: ``d_repr <= d_data`` (own training set) per task and over runs."""
    out = []
    for arch in sorted({r.arch for r in rows}):
        layers = sorted({layer for r in rows if r.arch == arch for layer in r.d_repr},
                        key=lambda layer: (layer not in PENULTIMATE_LAYERS, layer))
        for layer in layers:
            pairs = [(r, r.d_repr[layer]) for r in rows if r.arch == arch and layer in r.d_repr and positive(r.d_data)]
            if not pairs:
                continue
            below = [value <= r.d_data for r, value in pairs]
            tasks = [r.task for r, _ in pairs]
            per_task = tuple((task, sum(b for b, t in zip(below, tasks) if t == task), tasks.count(task))
                             for task in sorted(set(tasks)))
            try:
                bootstrap = group_bootstrap(weighted_mean, ([float(b) for b in below],), tasks)
            except FitError:  # one task: nothing to resample
                bootstrap = None
            out.append(ReprBound(
                arch, layer, pairs[0][0].d_repr_estimator, pairs[0][0].d_repr_source, sum(below), len(pairs), per_task,
                proportion(sum(k == n for _, k, n in per_task), len(per_task)), bootstrap,
                tuple(f"{r.task} N={r.n_train}" for (r, _), b in zip(pairs, below) if not b),
            ))
    return out
