"""The preparer registry: every name ``lightning-dims prepare NAME`` accepts, with its options.

A preparer turns one dataset's official download into images and a ``manifest.csv``. It is two
functions over the shared runner (:mod:`lightning_dims.prepare.runner`):

* ``plan(source, options) -> Plan``: read the download's tables and listing (no pixels) and list
  the tasks (one per source file, volume or series) with what is already known about them;
* ``convert(payload, context) -> TaskResult``: do one task (read pixels, write images), in a
  worker process; the returned rows become manifest lines.

Every option's default is the authors' procedure (their public notebooks, see each dataset's
module); ``--paper`` refuses any procedural option set to something else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lightning_dims.errors import LightningDimsError

__all__ = [
    "PREPARERS",
    "SEED_OPTION",
    "Context",
    "Option",
    "PrepareError",
    "Preparer",
    "get_preparer",
    "non_negative_int",
    "per_class_option",
    "register_preparer",
    "size_option",
]


class PrepareError(LightningDimsError, ValueError):
    """Bad input to ``lightning-dims prepare``; the message names the problem and the fix."""


@dataclass(frozen=True)
class Option:
    """One documented choice of a preparer.

    Attributes:
        name: Python name (``per_class``); the flag is ``--per-class``.
        default: the authors' value; None for a file found automatically in ``--source``.
        help: what it does, in one sentence.
        type: parses the command-line string.
        choices: allowed values, if a closed set.
        location: a file location rather than a procedural choice: not checked by ``--paper`` and
            not part of the resume check (moving a file does not change the result).
    """

    name: str
    default: Any
    help: str
    type: Callable[[str], Any] = str
    choices: tuple | None = None
    location: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Context:
    """What a task's ``convert`` needs besides its payload: the download, the output folder, the options."""

    source: Path
    out: Path
    options: dict


@dataclass(frozen=True)
class Preparer:
    """One dataset's preparation procedure.

    Attributes:
        name: the registry name (also the radiology registry's, so ``--out <root>/<name>`` loads).
        title: one line.
        obtain: where and how to download it.
        source: what ``--source`` must hold (the official layout).
        options: the documented choices (see :class:`Option`).
        plan, convert: see the module docstring.
        columns: manifest columns after ``path, label, patient_id``.
        doc: the page in ``docs/datasets/``.
    """

    name: str
    title: str
    obtain: str
    source: str
    options: tuple[Option, ...]
    plan: Callable
    convert: Callable
    columns: tuple[str, ...] = ()
    doc: str = ""

    def resolve_options(self, given: dict, paper: bool = False) -> dict:
        """Defaults overlaid with ``given``; unknown names and (with ``paper``) non-paper values are errors."""
        known = {option.name: option for option in self.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise PrepareError(f"{self.name} has no option(s) {unknown}; its options: {', '.join(sorted(known))}")
        resolved = {name: option.default for name, option in known.items()} | dict(given)
        for name, value in resolved.items():
            choices = known[name].choices
            if choices is not None and value not in choices:
                raise PrepareError(f"{known[name].flag} must be one of {list(choices)}, got {value!r}")
        if paper:
            differing = [f"{known[n].flag} {given[n]} (the authors': {known[n].default})" for n in given if not known[n].location and given[n] != known[n].default]
            if differing:
                raise PrepareError(f"--paper fixes every choice to the authors' procedure; drop --paper or {', '.join(differing)}")
        return resolved

    def is_paper(self, options: dict) -> bool:
        """True when every procedural option has the authors' value."""
        return all(options[o.name] == o.default for o in self.options if not o.location)


PREPARERS: dict[str, Preparer] = {}
"""name -> :class:`Preparer`, filled as the dataset modules are imported."""


def register_preparer(preparer: Preparer) -> Preparer:
    if preparer.name in PREPARERS:
        raise ValueError(f"preparer {preparer.name!r} is already registered")
    PREPARERS[preparer.name] = preparer
    return preparer


def get_preparer(name: str) -> Preparer:
    if name not in PREPARERS:
        raise PrepareError(f"unknown dataset {name!r} for prepare; one of: {', '.join(sorted(PREPARERS))}")
    return PREPARERS[name]


# ---- options several preparers share ------------------------------------------------------------


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


def size_option(default: int) -> Option:
    return Option(
        "size",
        default,
        "square side of the written images in pixels, 0 = native size; "
        "resized like skimage.transform.resize: Gaussian anti-aliasing sigma=(s-1)/2, then bilinear",
        non_negative_int,
    )


def per_class_option(default: int) -> Option:
    return Option(
        "per_class",
        default,
        "images drawn at random per class, 0 = all; unreadable draws are replaced",
        non_negative_int,
    )


SEED_OPTION = Option("seed", 0, "seed of the per-class draw (the authors' draw was unseeded)", int)
