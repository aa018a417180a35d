"""Check every command of a sweep before anything runs: a typo in a 972-run grid fails here, not on a cluster.

Each distinct ``lightning-dims fit`` command is parsed with the fit parser (both parses, the
preset's defaults, every type check) and what parsing does not check is checked without touching
data or building networks: the architecture is registered, the dataset is registered and accepts
the options, sizes and spec, and every callback of ``trainer.callbacks`` can be constructed with
its arguments.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable

from lightning_dims.sweep.grid import SweepRun
from lightning_dims.utils import canonical_json

FIT_PROGRAMS = ("lightning-dims", "lightning_dims")


def fit_arguments(run: SweepRun) -> list[str] | None:
    """The arguments after ``fit`` when the run's command is ``lightning-dims fit ...``; None otherwise."""
    argv = list(run.argv)
    for index, token in enumerate(argv[:-1]):
        if token.split("/")[-1] in FIT_PROGRAMS or token == "-m" and argv[index + 1] in FIT_PROGRAMS:
            rest = argv[index + 1 :] if token != "-m" else argv[index + 2 :]
            return rest[1:] if rest and rest[0] == "fit" else None
    return None


def construct_callbacks(specs) -> None:
    """Build every ``{"class_path", "init_args"}`` callback (raises what its constructor raises)."""
    for spec in specs or []:
        spec = dict(spec) if not hasattr(spec, "as_dict") else spec.as_dict()
        module, _, name = str(spec["class_path"]).rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        cls(**dict(spec.get("init_args") or {}))


def check_config(config) -> None:
    """What parsing leaves unchecked: arch, dataset and its options, split sizes, spec, callbacks."""
    from lightning_dims.data.task import DatasetTask
    from lightning_dims.models.registry import arch_spec

    arch_spec(config.model.arch)
    data = config.data
    DatasetTask(
        name=data.name,
        classes=data.classes,
        train_size=data.train_size,
        val_size=data.val_size,
        test_size=data.test_size,
        size=data.size,
        channels=data.channels,
        intensity=data.intensity,
        seed=data.seed,
        data_root=data.data_root,
        options=data.dataset_options,
    )


def check_runs(runs: Iterable[SweepRun]) -> list[tuple[str, str]]:
    """``(run_id, error)`` for every fit command of ``runs`` that would fail before training; [] when all pass."""
    from lightning_dims.compat import parser_error_line
    from lightning_dims.training.config_parser import FitConfigParser

    parser = FitConfigParser()
    problems, checked_callbacks = [], set()
    for run in runs:
        args = fit_arguments(run)
        if args is None:
            continue
        try:
            config = parser.parse(args)
            check_config(config)
            callbacks = json.loads(json.dumps(config.trainer.callbacks or [], default=lambda o: o.as_dict()))
            key = canonical_json(callbacks)
            if key not in checked_callbacks:
                construct_callbacks(callbacks)
                checked_callbacks.add(key)
        except Exception as error:  # every failure is reported against its run, the check goes on
            problems.append((run.run_id, parser_error_line(error)))
    return problems
