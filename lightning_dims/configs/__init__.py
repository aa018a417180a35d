"""Configuration files shipped inside the package, usable from any folder.

* ``protocol/paper.yaml``, ``protocol/arch/<arch>.yaml``, ``protocol/override/<family|arch>-<dataset>.yaml``:
  the paper's training protocol (what ``lightning-dims fit --preset paper`` applies);
* ``callbacks/fast.yaml``, ``callbacks/paper.yaml``, ``callbacks/demo.yaml``: the measuring callbacks
  (LightningCLI snippets);
* ``sweeps/quick.yaml``, ``sweeps/paper.yaml``, ``sweeps/demo.yaml``, ``sweeps/demo-digits.yaml``:
  W&B grid sweep files (the demo's two make one experiment).

A config is named by its path below this folder, with or without ``.yaml`` (``callbacks/fast``).
``lightning-dims fit --config NAME`` and ``lightning-dims sweep NAME`` accept these names: a path
that exists relative to the current folder wins, else the shipped file of that name is used.
"""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["CONFIG_ROOT", "load_yaml", "resolve_config", "shipped_configs", "shipped_path"]

CONFIG_ROOT = Path(__file__).resolve().parent


def shipped_configs(group: str | None = None) -> list[str]:
    """Names of the shipped config files (``callbacks/fast`` ...), optionally of one group (``sweeps``)."""
    root = CONFIG_ROOT / group if group else CONFIG_ROOT
    return sorted(str(path.relative_to(CONFIG_ROOT).with_suffix("")) for path in root.rglob("*.yaml"))


def shipped_path(name: str) -> Path | None:
    """The shipped file called ``name`` (``callbacks/fast``, ``callbacks/fast.yaml``), None if there is none.

    A leading folder of the repository's layout is accepted too (``sweeps/quick.yaml``), as is a
    bare file name that is unique (``quick``).
    """
    stem = name[:-5] if name.endswith(".yaml") else name
    stem = stem.replace("\\", "/").lstrip("./")
    if (CONFIG_ROOT / f"{stem}.yaml").is_file():
        return CONFIG_ROOT / f"{stem}.yaml"
    matches = [config for config in shipped_configs() if config.endswith(f"/{stem}") or config == stem]
    return CONFIG_ROOT / f"{matches[0]}.yaml" if len(matches) == 1 else None


def resolve_config(name: str | Path) -> Path:
    """``name`` as a file: the path itself when it exists, else the shipped config of that name."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = shipped_path(str(name))
    if shipped is None:
        raise FileNotFoundError(
            f"config {str(name)!r} is neither a file nor a shipped config; shipped: {', '.join(shipped_configs())}"
        )
    return shipped


def load_yaml(path: Path) -> dict:
    """A YAML mapping (``{}`` for an empty file); errors name the file and line."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{where}: invalid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data
