"""Every shipped config is tested: callback snippets and protocol files instantiate, the paper preset is
exactly its protocol files, and every command of every shipped sweep (the 972-run grid included) and of
the top-level reproduction sweeps parses with the fit parser and would start; a typo in any of them
fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lightning_dims.configs import CONFIG_ROOT, resolve_config, shipped_configs
from lightning_dims.sweep.check import check_runs, construct_callbacks
from lightning_dims.sweep.grid import expand_grid, load_sweep
from lightning_dims.training.config_parser import FitConfigParser


@pytest.fixture(scope="module")
def parser() -> FitConfigParser:
    return FitConfigParser()


def test_the_top_level_folders_are_the_shipped_files():
    repo = Path(__file__).resolve().parents[1]
    for group in ("callbacks", "sweeps"):
        for name in shipped_configs(group):
            assert (repo / f"{name}.yaml").resolve() == (CONFIG_ROOT / f"{name}.yaml").resolve(), name


@pytest.mark.parametrize("name", shipped_configs("callbacks"))
def test_callback_configs_parse_and_every_callback_constructs(parser, name):
    config = parser.parse(["--config", name])
    callbacks = yaml.safe_load(resolve_config(name).read_text())["trainer"]["callbacks"]
    assert len(config.trainer.callbacks) == len(callbacks) >= 3
    construct_callbacks(callbacks)


@pytest.mark.parametrize("name", shipped_configs("protocol"))
def test_protocol_files_compose_with_config(parser, name):
    config = parser.parse(["--preset", "none", "--config", name])
    flat = yaml.safe_load(resolve_config(name).read_text())
    for group, values in flat.items():
        for key, value in values.items():
            assert config[f"{group}.{key}"] == value, (name, group, key)


@pytest.mark.parametrize(("arch", "dataset"), [("resnet18", "mnist"), ("resnet50", "brats"), ("vgg16", "svhn"), ("vgg13", "cifar10")])
def test_the_paper_preset_is_exactly_its_protocol_files(parser, arch, dataset):
    from lightning_dims.models.presets import protocol_files

    files = [f"protocol/{relative}" for relative in protocol_files(arch, dataset)]
    composed = parser.parse(["--preset", "none", "--model.arch", arch, "--data.name", dataset,
                             *[arg for f in files for arg in ("--config", f)]])  # fmt: skip
    preset = parser.parse(["--model.arch", arch, "--data.name", dataset])
    for key in ("model.lr", "model.weight_decay", "data.batch_size", "data.size", "data.test_size", "data.intensity", "trainer.max_epochs"):
        assert preset[key] == composed[key], key
    assert preset["model.lr"] == (1e-6 if (arch, dataset) == ("vgg16", "svhn") else 1e-3 if arch.startswith("resnet") else 1e-4)


@pytest.mark.parametrize("name", shipped_configs("sweeps"))  # the paper's 972 commands: 33 parses, one per shape and value
def test_every_command_of_every_shipped_sweep_would_start(name):
    runs = expand_grid(load_sweep(name))
    assert len({run.run_id for run in runs}) == len(runs)
    assert check_runs(runs) == []


REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL_ONLY = sorted(
    str(path.relative_to(REPO))
    for group in ("callbacks", "sweeps")
    for path in (REPO / group).glob("*.yaml")
    if path.stem not in {name.split("/", 1)[1] for name in shipped_configs(group)}
)
"""Top-level configs that are not shipped in the package (the real-data reproduction's): tested here too."""


def test_the_top_level_only_configs_are_the_reproductions():
    assert TOP_LEVEL_ONLY == ["callbacks/reproduction.yaml", "sweeps/reproduction-breastmnist.yaml", "sweeps/reproduction.yaml"]


@pytest.mark.real_data
@pytest.mark.parametrize("path", [p for p in TOP_LEVEL_ONLY if p.startswith("sweeps/")])
def test_every_command_of_the_top_level_sweeps_would_start(path, monkeypatch):
    monkeypatch.chdir(REPO)  # their commands name callbacks/reproduction.yaml relative to the repository
    runs = expand_grid(load_sweep(str(REPO / path)), cwd=REPO)
    assert len({run.run_id for run in runs}) == len(runs) > 0
    assert check_runs(runs) == []


def test_a_typo_in_a_sweep_is_caught(tmp_path):
    sweep = yaml.safe_load(resolve_config("sweeps/quick").read_text())
    sweep["command"] = [token.replace("max_epochs", "max_epoch") for token in sweep["command"]]
    sweep["parameters"]["data.train_size"] = {"values": [100]}
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(sweep))
    problems = check_runs(expand_grid(load_sweep(path)))
    assert problems and all("max_epoch" in problem for _, problem in problems)


def test_a_wrong_callback_argument_is_caught(tmp_path):
    text = resolve_config("callbacks/fast").read_text().replace("max_samples: 200", "max_sample: 200", 1)
    path = tmp_path / "cb.yaml"
    path.write_text(text)
    sweep = {"program": "lightning-dims", "parameters": {"model.arch": {"value": "resnet18"}},
             "command": ["${env}", "${program}", "fit", f"--config={path}", "${args}"]}  # fmt: skip
    problems = check_runs(expand_grid(sweep))
    assert len(problems) == 1 and "max_sample" in problems[0][1]
