"""What the W&B dashboards show, as plain data: the paper's figures as panels over W&B keys.

A :class:`DashboardSpec` lists sections of panels; every panel names the keys it plots as
:class:`Key` ``(section, name)``: ``summary`` (a run's final value), ``config`` (the flat run
config) or ``history`` (values over training). All names come from
:mod:`lightning_dims.tracking.names`, the list the runs log under. The panels (paper.md §3):

* Generalization, one section per architecture: test loss against N on log-log axes (the
  paper's ``L ~ K_F N^(-1/d_data)``; in the report the runs are grouped by task, one colour and
  one fitted line per task), and log test loss against ``ln N / d_data`` (linear in the law);
* Robustness: FGSM loss penalty against K_F;
* Representations: d_repr of the penultimate layer against d_data on equal axes ``[0, d_max]``,
  so the panel's diagonal is the line y = x (the paper's bound d_repr <= d_data), and d_repr over
  training steps;
* Datasets: K_F and d_data per dataset (mean and range over runs);
* Grid: parallel coordinates arch, N, dataset -> test loss.

Runs are coloured by ``domain`` (:data:`DOMAIN_COLORS`). :mod:`~lightning_dims.tracking.dashboards`
turns a spec into a ``wandb-workspaces`` workspace and report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from lightning_dims.tracking import names

__all__ = [
    "DEFAULT_D_MAX",
    "DOMAIN_COLORS",
    "DashboardSpec",
    "Key",
    "Panel",
    "PanelKind",
    "PanelSection",
    "Section",
    "config",
    "dashboard_spec",
    "history",
    "paper_sections",
    "summary",
]

Section = Literal["summary", "config", "history"]
PanelKind = Literal["scatter", "line", "bar", "parallel"]

DOMAIN_COLORS = {"natural": "#4E79A7", "medical": "#E15759", "synthetic": "#59A14F", "generic": "#9C755F"}
"""Colour of each dataset domain (the registry's domains) in every panel."""

DEFAULT_D_MAX = 40.0
"""Upper end of both axes of the d_repr-vs-d_data panel (the paper's d_data are 5.6 to 17.8)."""


@dataclass(frozen=True)
class Key:
    """A W&B key of a run: ``section`` ``summary``, ``config`` or ``history``, and its name."""

    section: Section
    name: str

    def __str__(self) -> str:
        return f"{self.section}:{self.name}"


def summary(name: str) -> Key:
    return Key("summary", name)


def config(name: str) -> Key:
    if name not in names.CONFIG_KEYS:
        raise ValueError(f"{name!r} is not a run config key: use one of {', '.join(names.CONFIG_KEYS)}")
    return Key("config", name)


def history(name: str) -> Key:
    return Key("history", name)


@dataclass(frozen=True)
class Panel:
    """One chart.

    Attributes:
        kind: ``scatter`` (one point per run: x and y[0] from summary/config), ``line`` (y over the
            history key x), ``bar`` (each y aggregated over the runs of each ``groupby`` value:
            mean, with min-max range), ``parallel`` (one axis per key in ``y``).
        title: the panel's title; says what the paper expects to see.
        x: the x key (None for ``bar`` and ``parallel``).
        y: the plotted keys.
        log_x, log_y: logarithmic axes.
        equal_range: ``(lo, hi)`` for both axes, so the diagonal is y = x.
        groupby: ``bar``: the config key whose values make the bars.
        fit_line: ``scatter``: W&B draws a least-squares line through each run group's points.
    """

    kind: PanelKind
    title: str
    y: tuple[Key, ...]
    x: Key | None = None
    log_x: bool = False
    log_y: bool = False
    equal_range: tuple[float, float] | None = None
    groupby: Key | None = None
    fit_line: bool = False

    def keys(self) -> list[Key]:
        return [key for key in (self.x, *self.y, self.groupby) if key is not None]


@dataclass(frozen=True)
class PanelSection:
    """A titled group of panels; ``per_arch``: repeated for each architecture, over its runs only;
    ``group_by``: the report groups the section's runs by this config key (one colour and one fitted
    line per value, e.g. per task, so the tasks' slopes can be told apart)."""

    title: str
    panels: tuple[Panel, ...]
    per_arch: bool = False
    group_by: Key | None = None


@dataclass(frozen=True)
class DashboardSpec:
    """The dashboards of one W&B project (or one sweep in it)."""

    entity: str
    project: str
    sweep: str | None
    archs: tuple[str, ...]
    estimator: str
    sections: tuple[PanelSection, ...]
    color_by: Key = field(default_factory=lambda: config("domain"))
    colors: dict[str, str] = field(default_factory=lambda: dict(DOMAIN_COLORS))

    @property
    def name(self) -> str:
        """``lightning-dims: <project>`` or ``lightning-dims: sweep <id>``."""
        return f"lightning-dims: sweep {self.sweep}" if self.sweep else f"lightning-dims: {self.project}"

    def keys(self) -> set[Key]:
        """Every key any panel uses, the colouring key and the sections' grouping keys."""
        grouping = {section.group_by for section in self.sections if section.group_by is not None}
        return {self.color_by} | grouping | {key for section in self.sections for panel in section.panels for key in panel.keys()}

    def to_json(self) -> dict:
        """The spec as JSON-ready data, keys written ``section:name``."""

        def plain(value):
            if isinstance(value, dict) and set(value) == {"section", "name"}:
                return f"{value['section']}:{value['name']}"
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items() if v not in (None, False, ())}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        return plain(asdict(self))


def paper_sections(estimator: str = "twonn", d_max: float = DEFAULT_D_MAX) -> tuple[PanelSection, ...]:
    """The sections a reader of the paper wants (module docstring), for d_repr by ``estimator``."""
    test_loss = summary(names.test("loss"))
    d_repr = names.d_repr(estimator)
    return (
        PanelSection(
            "Generalization",
            (
                Panel("scatter", "test loss vs N (log-log): slope -1/d_data", (test_loss,), config("n_train"), log_x=True, log_y=True, fit_line=True),
                Panel("scatter", "test loss vs ln N / d_data (log y): linear in the law", (test_loss,), summary(names.LOG_N_OVER_D_DATA), log_y=True),
            ),
            per_arch=True,
            group_by=config("task"),
        ),
        PanelSection(
            "Robustness",
            (Panel("scatter", "FGSM loss penalty vs K_F", (summary(names.fgsm("loss_penalty")),), summary(names.LABEL_SHARPNESS)),),
        ),
        PanelSection(
            "Representations",
            (
                Panel(
                    "scatter", f"d_repr (penultimate, {estimator}) vs d_data: diagonal is y = x",
                    (summary(d_repr),), summary(names.D_DATA), equal_range=(0.0, d_max),
                ),
                Panel("line", f"d_repr (penultimate, {estimator}) over training", (history(d_repr),), history(names.STEP)),
            ),
        ),
        PanelSection(
            "Datasets",
            (
                Panel("bar", "K_F per dataset", (summary(names.LABEL_SHARPNESS),), groupby=config("dataset")),
                Panel("bar", "d_data per dataset", (summary(names.D_DATA),), groupby=config("dataset")),
            ),
        ),
        PanelSection(
            "Grid",
            (Panel("parallel", "arch / N / dataset -> test loss", (config("arch"), config("n_train"), config("dataset"), test_loss)),),
        ),
    )  # fmt: skip


def dashboard_spec(
    entity: str,
    project: str,
    sweep: str | None = None,
    archs: tuple[str, ...] | list[str] = (),
    estimator: str = "twonn",
    d_max: float = DEFAULT_D_MAX,
) -> DashboardSpec:
    """The paper's dashboards for ``entity/project`` (only ``sweep``'s runs when given), one
    generalization section per arch of ``archs``."""
    if not archs:
        raise ValueError("name at least one architecture for the per-architecture sections")
    if not d_max > 0:
        raise ValueError(f"d_max must be positive, got {d_max}")
    return DashboardSpec(
        entity=entity,
        project=project,
        sweep=sweep,
        archs=tuple(archs),
        estimator=estimator,
        sections=paper_sections(estimator, d_max),
    )
