"""Binary (or k-class) task construction and class-balanced, group-disjoint splits.

Protocol (paper.md §4): a class pair (given, or drawn from the seed), a class-balanced training
set of N images, a disjoint class-balanced test set (750 by default) and a validation set. The
test set is drawn first, then validation, then training, so for a fixed seed the test set does
not change with N. Images sharing a group id (a patient) go to one split only.
"""

from __future__ import annotations

import warnings

import numpy as np

from lightning_dims.errors import LightningDimsError

__all__ = [
    "EVALUATION_SPLITS",
    "SPLITS",
    "ClassDescriber",
    "SplitError",
    "draw_splits",
    "fit_quotas",
    "per_class_quota",
    "require_evaluation_sets",
    "resolve_classes",
    "task_labels",
]

SPLITS = ("test", "val", "train")
"""Drawing order."""

EVALUATION_SPLITS = ("val", "test")
"""The splits a training run is judged on: one that was asked for and came out empty is refused."""


class SplitError(LightningDimsError, ValueError):
    """The pool cannot supply the requested class-balanced split sizes."""


def resolve_classes(classes: list[int] | None, default: str, num_classes: int, seed: int, name: str) -> list[int]:
    """The original class ids of the task, in label order (``classes[i]`` becomes label ``i``).

    ``classes=None``: ``default == "pair"`` draws two distinct classes from ``seed`` (sorted);
    ``default == "all"`` uses every class.
    """
    if classes is None:
        if default == "pair":
            pair = np.random.default_rng(seed).choice(num_classes, size=2, replace=False)
            return sorted(int(c) for c in pair)
        return list(range(num_classes))
    classes = [int(c) for c in classes]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise SplitError(f"{name}: classes must list at least two distinct class ids, got {classes}")
    out_of_range = [c for c in classes if not 0 <= c < num_classes]
    if out_of_range:
        raise SplitError(f"{name}: class ids {out_of_range} out of range; this dataset has classes 0..{num_classes - 1}")
    return classes


def task_labels(labels: np.ndarray, classes: list[int]) -> np.ndarray:
    """Original labels -> task labels: ``classes[i]`` -> ``i``, every other class -> -1 (unused)."""
    mapped = np.full(len(labels), -1, dtype=np.int64)
    for position, original in enumerate(classes):
        mapped[labels == original] = position
    return mapped


class ClassDescriber:
    """Names task class ``i`` in messages, with its dataset class name when known."""

    def __init__(self, class_names: list[str] | None):
        self.class_names = class_names

    def __call__(self, cls: int) -> str:
        return f"task class {cls}" + (f" ({self.class_names[cls]!r})" if self.class_names else "")


def per_class_quota(total: int, n_classes: int) -> np.ndarray:
    """``total`` split as evenly as possible over classes (the first classes take the remainder)."""
    if n_classes < 1:
        raise SplitError("the task has no classes: the dataset lists no labelled images")
    quota = np.full(n_classes, total // n_classes, dtype=np.int64)
    quota[: total % n_classes] += 1
    return quota


def fit_quotas(
    labels: np.ndarray,
    n_classes: int,
    partition: np.ndarray | None,
    sizes: dict[str, int],
    name: str,
    class_names: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Per-class quotas of every split; shrinks test, then validation, to what the pool holds.

    The training set is never shrunk: too few images for it is a :class:`SplitError`. Shrinking
    keeps the test/validation sets class-balanced and warns, naming the limiting class.
    """
    describe = ClassDescriber(class_names)
    quotas = {split: per_class_quota(sizes[split], n_classes) for split in SPLITS}
    if partition is not None:  # fixed partitions: each split only competes with itself
        for split in SPLITS:
            counts = np.bincount(labels[(labels >= 0) & (partition == split)], minlength=n_classes)
            if (counts < quotas[split]).any():
                limiting = int(np.argmin(counts - quotas[split]))
                if split == "train":
                    raise SplitError(
                        f"{name}: the train partition has only {counts[limiting]} images of {describe(limiting)}; "
                        f"train_size={sizes['train']} needs {quotas['train'][limiting]} per class"
                    )
                shrunk = int(counts.min()) * n_classes
                warnings.warn(f"{name}: {split} set shrunk from {sizes[split]} to {shrunk} images ({split} partition too small)")
                quotas[split] = per_class_quota(shrunk, n_classes)
        return quotas
    counts = np.bincount(labels[labels >= 0], minlength=n_classes)
    left = counts - quotas["train"]
    if (left < 0).any():
        limiting = int(np.argmin(left))
        raise SplitError(
            f"{name}: {describe(limiting)} has only {counts[limiting]} images; train_size={sizes['train']} needs "
            f"{quotas['train'][limiting]} per class (largest possible train_size: {int(counts.min()) * n_classes})"
        )
    for split in ("val", "test"):
        if (left < quotas[split]).any():
            limiting = int(np.argmin(left - quotas[split]))
            shrunk = int(left.min()) * n_classes
            warnings.warn(
                f"{name}: {split} set shrunk from {sizes[split]} to {shrunk} images: {describe(limiting)} has only "
                f"{counts[limiting]} images (lower train_size/val_size/test_size to silence this)"
            )
            quotas[split] = per_class_quota(shrunk, n_classes)
        left = left - quotas[split]
    return quotas


def require_evaluation_sets(requested: dict[str, int], drawn: dict[str, int], name: str) -> None:
    """Refuse a run whose validation or test set was asked for but shrank to 0 images.

    :func:`fit_quotas` shrinks the evaluation sets of a small pool (with a warning); shrunk to
    nothing, the run would train and then report a test loss of no images. ``requested`` and
    ``drawn`` map split names to sizes.

    Raises:
        SplitError: naming the sizes to lower.
    """
    for split in EVALUATION_SPLITS:
        if requested.get(split, 0) > 0 and drawn.get(split, 0) == 0:
            raise SplitError(
                f"{name}: the {split} set is empty (asked for {split}_size={requested[split]}, the pool has no images "
                f"left after train_size={requested['train']}"
                + (f" and val_size={requested['val']}" if split == "test" else "")
                + "): lower train_size"
                + (" or val_size" if split == "test" else "")
                + ", or use a larger pool"
            )


def draw_splits(
    labels: np.ndarray,
    sizes: dict[str, int],
    seed: int,
    n_classes: int,
    *,
    groups: np.ndarray | None = None,
    partition: np.ndarray | None = None,
    name: str = "dataset",
    class_names: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Class-balanced, disjoint train/val/test indices into the pool.

    Args:
        labels: (N,) task labels 0..C-1, or -1 for images outside the task.
        sizes: ``{"train": N, "val": ..., "test": ...}`` total images per split.
        seed: every draw derives from it.
        n_classes: C, the number of task classes.
        groups: (N,) group ids (patients); a group's images all go to at most one split.
        partition: (N,) fixed ``train``/``val``/``test`` membership (each split draws only from its own).
        name, class_names: for error messages.

    Groups are visited in one seeded random order; a split takes the shortest prefix of
    unused groups that holds its quota of every class, samples its quota from that prefix,
    and consumes only the groups it sampled from (singleton groups: only the sampled images).
    """
    labels = np.asarray(labels, dtype=np.int64)
    quotas = fit_quotas(labels, n_classes, partition, sizes, name, class_names)
    describe = ClassDescriber(class_names)
    rng = np.random.default_rng(seed)
    group_ids = np.arange(len(labels)) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    n_groups = int(group_ids.max()) + 1 if len(group_ids) else 0
    group_rank = np.empty(n_groups, dtype=np.int64)
    group_rank[rng.permutation(n_groups)] = np.arange(n_groups)
    image_rank = group_rank[group_ids]
    consumed = np.zeros(n_groups, dtype=bool)
    result = {}
    for split in SPLITS:
        quota = quotas[split]
        eligible = (labels >= 0) & ~consumed[group_ids]
        if partition is not None:
            eligible &= partition == split
        cutoff = -1
        for cls, need in enumerate(quota):
            if need == 0:
                continue
            ranks = np.sort(image_rank[eligible & (labels == cls)])
            if len(ranks) < need:
                raise SplitError(
                    f"{name}: after drawing the earlier splits only {len(ranks)} images of {describe(cls)} are left "
                    f"for the {split} set, which needs {need}"
                    + ("; patient grouping removes images: lower the split sizes" if groups is not None else "")
                )
            cutoff = max(cutoff, int(ranks[need - 1]))
        picked = [
            rng.choice(np.flatnonzero(eligible & (labels == cls) & (image_rank <= cutoff)), size=need, replace=False)
            for cls, need in enumerate(quota)
            if need > 0
        ]
        chosen = np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)
        consumed[group_ids[chosen]] = True
        result[split] = chosen.astype(np.int64)
    return result
