#!/usr/bin/env python
"""Plant known bugs one at a time in a copy of the checkout and report which ones the tests catch.

Each mutant is an exact text replacement in one source file plus the test files that should
fail with it. The script copies the checkout (git's tracked and untracked-but-not-ignored files)
to a temporary folder, runs the union of the targeted tests there once unmodified (they must
pass, or nothing can be judged), then for every mutant: applies it, runs its tests with
``pytest -x``, restores the file. A mutant is

* ``caught`` when pytest reports a failing test (exit status 1),
* ``NOT CAUGHT`` when every test passes (exit status 0),
* ``ERROR`` for anything else (collection or usage errors, a timeout).

A mutant whose target text is not found exactly once fails the whole run before anything is
run: after a refactor, update the mutant rather than let it silently become a no-op.

Usage (from the checkout root, with the project's Python; the real data as for the tests)::

    LIGHTNING_DIMS_DATA=../shared/data python scripts/plant_bugs.py            # every mutant
    python scripts/plant_bugs.py --list                                        # names only
    python scripts/plant_bugs.py --only kf-paper-indicator --only fgsm-train-mode

Exit status: 0 when every mutant is caught, 1 when some are not (or errored), 2 when a mutant is
stale or the unmodified tests fail.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (which must occur exactly once in ``path``) by ``new``."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str


MUTANTS = (
    # -- the bugs issue 13 found uncaught --------------------------------------------------------
    Mutant(
        "kf-paper-indicator",
        "lightning_dims/properties/label_sharpness.py",
        "cross = sampled_labels[rows] != sampled_labels[cols]",
        "cross = sampled_labels[rows] == sampled_labels[cols]",
        ("tests/test_label_sharpness.py",),
        "K_F mode='paper' with the authors' == indicator (1 / smallest same-label distance)",
    ),
    Mutant(
        "record-written-in-place",
        "lightning_dims/records/store.py",
        "        if state is RecordState.UNFINISHED:\n            return atomic_write(target, text)\n",
        "        if state is RecordState.UNFINISHED:\n            target.write_text(text)\n            return target\n",
        ("tests/test_atomic_writes.py", "tests/test_records.py"),
        "a results record replacing a failed one is written in place, not temp file + rename",
    ),
    Mutant(
        "new-record-written-in-place",
        "lightning_dims/records/store.py",
        "            if publish_new(target, text):  # atomic, and never clobbers a record that appeared meanwhile\n",
        "            if target.write_text(text):\n",
        ("tests/test_atomic_writes.py",),
        "a run's first results record is written in place (open(target, 'w')), not linked into place whole",
    ),
    Mutant(
        "cache-entry-written-in-place",
        "lightning_dims/data/property_cache.py",
        "    with atomic_open(path, fsync=False) as stream:  # a lost entry is measured again\n",
        '    path.parent.mkdir(parents=True, exist_ok=True)\n    with open(path, "w") as stream:\n',
        ("tests/test_atomic_writes.py", "tests/test_data_embedded.py"),
        "a property-cache entry is written in place, not temp file + rename",
    ),
    Mutant(
        "fgsm-train-mode",
        "lightning_dims/callbacks/adversarial.py",
        "with on_strategy_device(trainer, pl_module) as device, evaluation_mode(pl_module):",
        "with on_strategy_device(trainer, pl_module) as device, torch.enable_grad():",
        ("tests/test_callbacks_adversarial.py",),
        "FGSM attacks the model in train mode (BatchNorm statistics updated, dropout on)",
    ),
    Mutant(
        "drepr-on-train-set",
        "lightning_dims/callbacks/repr_dim.py",
        'return find_loader(trainer, self.source, self.dataloader, owner="ReprDimCallback")',
        'return find_loader(trainer, "train", self.dataloader, owner="ReprDimCallback")',
        ("tests/test_callbacks_repr_dim.py",),
        "d_repr embeds the training set whatever source= says",
    ),
    # -- the bugs the suite already caught -------------------------------------------------------
    Mutant(
        "kf-exhaustive-indicator",
        "lightning_dims/properties/label_sharpness.py",
        "for a in rows for b in range(stop, n, side)]",
        "for a in rows for b in range(start, n, side)]",
        ("tests/test_label_sharpness.py",),
        "exhaustive K_F also compares same-label pairs (each class's blocks start at its own rows)",
    ),
    Mutant(
        "mle-k-minus-1",
        "lightning_dims/properties/intrinsic_dimension.py",
        "(k - 2 if unbiased else k - 1)",
        "(k - 1 if unbiased else k - 1)",
        ("tests/test_intrinsic_dimension.py",),
        "MLE normalised by k-1 instead of k-2",
    ),
    Mutant(
        "twonn-keeps-largest-ratio",
        "lightning_dims/properties/intrinsic_dimension.py",
        "n_kept = min(n - 1, int(",
        "n_kept = min(n, int(",
        ("tests/test_intrinsic_dimension.py",),
        "TwoNN keeps the largest ratio mu (whose ECDF target -log(1 - n/n) is infinite)",
    ),
    Mutant(
        "fgsm-penalty-sign",
        "lightning_dims/properties/robustness.py",
        "else attacked_loss - clean_loss\n",
        "else clean_loss - attacked_loss\n",
        ("tests/test_callbacks_adversarial.py", "tests/test_records.py"),
        "FGSM loss penalty with the wrong sign",
    ),
    Mutant(
        "train-image-leaks-into-test",
        "lightning_dims/data/splits.py",
        "consumed[group_ids[chosen]] = True",
        "consumed[group_ids[chosen]] = False",
        ("tests/test_data_splits.py",),
        "images drawn for the test set can be drawn again for training",
    ),
    Mutant(
        "no-max255-scaling",
        "lightning_dims/data/spec.py",
        "    if spec.intensity in INTENSITY_SCALINGS:\n",
        "    if False:\n",
        ("tests/test_spec.py", "tests/test_data_embedded.py"),
        "the per-image max-255 scaling is skipped",
    ),
    # -- issue 18: inference with the task as the unit -------------------------------------------------
    Mutant(
        "penalty-pools-runs",
        "lightning_dims/analysis/robustness.py",
        "by_task = _attempt(lambda: correlate(task_k_f, task_penalty, task_level=True),",
        "by_task = _attempt(lambda: correlate(k_f, penalty, task_level=True),",
        ("tests/test_analysis_robustness.py", "tests/test_analysis_task_level.py"),
        "the FGSM verdict's r pools runs as independent points instead of one point per task",
    ),
    Mutant(
        "bootstrap-resamples-runs",
        "lightning_dims/analysis/robustness.py",
        "group_bootstrap(weighted_pearson, (k_f, penalty), tasks)",
        "group_bootstrap(weighted_pearson, (k_f, penalty), [r.run_id for r, _ in points])",
        ("tests/test_analysis_task_level.py",),
        "the 'whole-task' bootstrap resamples runs as if independent",
    ),
    # -- issue 26: verdicts a referee accepts -------------------------------------------------------
    Mutant(
        "scaled-wls-for-random-effects",
        "lightning_dims/analysis/meta.py",
        'from pymare.estimators import VarianceBasedLikelihoodEstimator\n\n'
        '    estimator = VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction="knapp-hartung")',
        'from pymare.estimators import WeightedLeastSquares\n\n'
        '    estimator = WeightedLeastSquares(tau2=0.0, small_sample_correction="knapp-hartung-conservative")',
        ("tests/test_analysis_meta.py", "tests/test_analysis_verdicts.py"),
        "across-task fits weight by 1/SE^2 with a multiplicative scale (floored at 1) instead of REML random effects",
    ),
    Mutant(
        "leave-one-out-dropped",
        "lightning_dims/analysis/verdicts.py",
        "leave_one_out(primary, law_value), tuple(datasets)",
        "None, tuple(datasets)",
        ("tests/test_analysis_verdicts.py",),
        "a verdict is given without its leave-one-task-out check (nothing says what it hinges on)",
    ),
    Mutant(
        "subgroups-unadjusted",
        "lightning_dims/analysis/robustness.py",
        "adjusted = dict(zip(exploratory, holm(raw)))",
        "adjusted = dict(zip(exploratory, raw))",
        ("tests/test_analysis_verdicts.py",),
        "exploratory penalty scopes report unadjusted p values as if each were the declared test",
    ),
    Mutant(
        "fig2-ols-for-random-effects",
        "lightning_dims/analysis/laws.py",
        "max(curve.fit.residual_sd / math.sqrt(len(runs)), SE_FLOOR)",
        "1.0",
        ("tests/test_analysis_tasks.py",),
        "the Fig. 2 slopes give every task the same error, so the random-effects fit is OLS over the task means",
    ),
    Mutant(
        "law-scopes-unadjusted",
        "lightning_dims/analysis/verdicts.py",
        "zip(verdicts, p_zero, p_law, holm(p_zero), holm(p_law))",
        "zip(verdicts, p_zero, p_law, p_zero, p_law)",
        ("tests/test_analysis_verdicts.py", "tests/test_analysis_tasks.py"),
        "exploratory law scopes (other archs, series, Fig. 2) are read from unadjusted p values",
    ),
    Mutant(
        "exploratory-law-finding-unadjusted",
        "lightning_dims/analysis/findings.py",
        "state = scope.fit.verdict.state if scope.adjusted is None else scope.adjusted.state",
        "state = scope.fit.verdict.state",
        ("tests/test_analysis_verdicts.py",),
        "an exploratory law finding holds on its unadjusted interval",
    ),
    Mutant(
        "exploratory-fragility-unadjusted",
        "lightning_dims/analysis/findings.py",
        "holds = above and (primary or (scope.holm_p is not None and scope.holm_p < 0.05))",
        "holds = above",
        ("tests/test_analysis_verdicts.py",),
        "an exploratory FGSM finding holds on its unadjusted interval",
    ),
    # -- README claims tested by tests/test_readme_claims.py ---------------------------------------
    Mutant(
        "test-shrinks-after-validation",
        "lightning_dims/data/splits.py",
        'for split in ("val", "test"):',
        'for split in ("test", "val"):',
        ("tests/test_readme_claims.py",),
        "a too-small pool shrinks validation before the test set",
    ),
    Mutant(
        "brats-rule-threshold",
        "lightning_dims/data/manifest.py",
        'LabelRule("tumor_voxels", at_least(1),',
        'LabelRule("tumor_voxels", at_least(2),',
        ("tests/test_readme_claims.py",),
        "BraTS tumour label needs 2 voxels instead of 1",
    ),
    Mutant(
        "mura-without-patients",
        "lightning_dims/data/manifest.py",
        '"abnormal vs normal, from the study folder name (..._positive / ..._negative)"),\n'
        "        patient_pattern=PATIENT_FOLDER_PATTERN,\n",
        '"abnormal vs normal, from the study folder name (..._positive / ..._negative)"),\n'
        "        patient_pattern=None,\n",
        ("tests/test_readme_claims.py",),
        "MURA patient ids are not parsed from the paths",
    ),
    Mutant(
        "fingerprint-ignores-kf-mode",
        "lightning_dims/data/task.py",
        '                    "kf_mode": kf_mode,\n                    "kf_seed": self.seed,\n',
        '                    "kf_seed": self.seed,\n',
        ("tests/test_readme_claims.py",),
        "the property cache serves an exhaustive K_F for a paper-mode request",
    ),
    Mutant(
        "head-size-ignored",
        "lightning_dims/models/classifier.py",
        "self.head_size = num_classes if head_size is None else head_size",
        "self.head_size = num_classes",
        ("tests/test_readme_claims.py",),
        "--model.head_size 1000 silently builds a num_classes head",
    ),
    Mutant(
        "no-train-loss-step",
        "lightning_dims/models/classifier.py",
        'self.log(split_metric("train", "loss_step"), loss.detach(), on_step=True, on_epoch=False, prog_bar=True)',
        "pass",
        ("tests/test_readme_claims.py",),
        "train/loss_step is not logged",
    ),
)


def checkout_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files of the checkout (what CI would see)."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root, capture_output=True, check=True,
    )  # fmt: skip
    return [name for name in listing.stdout.decode().split("\0") if name and (root / name).is_file()]


def copy_checkout(root: Path, into: Path) -> None:
    for name in checkout_files(root):
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)


def check_targets(copy: Path, mutants: list[Mutant]) -> list[str]:
    """One line per mutant whose target text is not in its file exactly once."""
    problems = []
    for mutant in mutants:
        path = copy / mutant.path
        if not path.is_file():
            problems.append(f"{mutant.name}: {mutant.path} does not exist")
            continue
        count = path.read_text().count(mutant.old)
        if count != 1:
            problems.append(f"{mutant.name}: target text found {count} times in {mutant.path} (must be exactly once)")
        for test in mutant.tests:
            if not (copy / test).is_file():
                problems.append(f"{mutant.name}: test file {test} does not exist")
    return problems


def run_pytest(copy: Path, tests: list[str], timeout: float, extra: list[str]) -> tuple[int, float, str]:
    """(exit status, seconds, last lines of output) of pytest on ``tests`` inside the copy."""
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *extra, *tests]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, time.monotonic() - started, f"timed out after {timeout:.0f} s"
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
    return done.returncode, time.monotonic() - started, tail


def first_failure(output: str) -> str:
    """The ``FAILED tests/...`` line pytest's summary names, or the last line."""
    for line in output.splitlines():
        if line.startswith("FAILED "):
            return line[len("FAILED ") :][:150]
    return (output.splitlines() or [""])[-1][:150]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="plant only these mutants (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per pytest run (default 900)")
    parser.add_argument("--pytest-arg", action="append", default=[], metavar="ARG", help="extra pytest argument (repeatable)")
    args = parser.parse_args(argv)

    if args.list:
        for mutant in MUTANTS:
            print(f"{mutant.name:32} {mutant.path}: {mutant.what}")
        return 0
    unknown = sorted(set(args.only) - {m.name for m in MUTANTS})
    if unknown:
        parser.error(f"unknown mutant(s) {unknown}; see --list")
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]

    with tempfile.TemporaryDirectory(prefix="plant-bugs-") as folder:
        copy = Path(folder) / "checkout"
        copy_checkout(ROOT, copy)
        problems = check_targets(copy, mutants)
        if problems:
            print("plant_bugs: stale mutants (the code changed; update MUTANTS in scripts/plant_bugs.py):", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 2

        targeted = sorted({test for mutant in mutants for test in mutant.tests})
        status, seconds, output = run_pytest(copy, targeted, args.timeout, args.pytest_arg)
        print(f"unmodified copy: {len(targeted)} test files, exit {status} ({seconds:.0f} s)")
        if status != 0:
            print(f"plant_bugs: the unmodified tests do not pass, so no mutant can be judged:\n{output}", file=sys.stderr)
            return 2

        results = []
        for mutant in mutants:
            path = copy / mutant.path
            original = path.read_text()
            path.write_text(original.replace(mutant.old, mutant.new, 1))
            try:
                status, seconds, output = run_pytest(copy, list(mutant.tests), args.timeout, args.pytest_arg)
            finally:
                path.write_text(original)
            verdict = {0: "NOT CAUGHT", 1: "caught"}.get(status, "ERROR")
            detail = first_failure(output) if status != 0 else "all targeted tests passed"
            results.append((mutant, verdict))
            print(f"{verdict:10} {mutant.name:32} {seconds:5.0f} s  {detail}", flush=True)

    caught = sum(verdict == "caught" for _, verdict in results)
    print(f"\n{caught} of {len(results)} planted bugs caught")
    for mutant, verdict in results:
        if verdict != "caught":
            print(f"  {verdict}: {mutant.name} ({mutant.what}) in {mutant.path}; tests {', '.join(mutant.tests)}")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
