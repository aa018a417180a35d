"""`sweep` checks every command before any point starts: one parse per command shape and parameter value."""

from __future__ import annotations

import itertools
import subprocess
import sys

from lightning_dims.models.presets import protocol_files
from lightning_dims.sweep.check import commands_to_parse
from lightning_dims.sweep.grid import expand_grid, load_sweep
from lightning_dims.utils import flatten
from tests.helpers.processes import child_env
from tests.helpers.sweeps import tiny_sweep, write_sweep


def test_the_paper_grid_is_covered_by_one_parse_per_shape_and_value():
    runs = expand_grid(load_sweep("sweeps/paper"))
    chosen = commands_to_parse(runs)
    leaves = [flatten(run.parameters) for run in chosen]
    every_value = {(key, repr(value)) for run in runs for key, value in flatten(run.parameters).items()}
    assert {(key, repr(value)) for leaf in leaves for key, value in leaf.items()} == every_value
    presets = {(arch, tuple(protocol_files(arch, name))) for arch, name in itertools.product(
        ["resnet18", "resnet34", "resnet50", "vgg13", "vgg16", "vgg19"], ["brats", "svhn", "mnist"])}  # fmt: skip
    assert {(leaf["model.arch"], tuple(protocol_files(leaf["model.arch"], leaf["data.name"]))) for leaf in leaves} == presets
    assert len(presets) == 6 + 3  # each arch's file, and the VGG-on-SVHN override for the three VGGs
    assert len(chosen) < 40  # of 972


def test_a_misspelt_parameter_is_refused_before_any_point_starts(tmp_path):
    sweep = tiny_sweep()
    sweep["parameters"]["model.achr"] = sweep["parameters"].pop("model.arch")
    path = write_sweep(tmp_path, sweep)
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "lightning_dims", "sweep", str(path), "--results", str(results)],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "unknown key 'model.achr' (did you mean model.arch?)" in done.stderr
    assert "nothing started" in done.stderr and "Traceback" not in done.stderr
    assert not results.exists()  # no run folder, no log
