"""A :class:`~lightning_dims.tracking.dashboard_spec.DashboardSpec` as a W&B workspace and report (``wandb-workspaces``).

The **workspace** shows the project's finished runs (one sweep's when the spec names one), grouped
and coloured by domain; every section of the spec is one workspace section. A workspace has one
run set for all its panels, so a per-architecture section appears there once, over all
architectures. The **report** repeats such a section for each architecture: each of its panel
grids has one run set per domain (filtered by arch, domain, state and sweep), which also colours
the runs by domain; a section with ``group_by`` (Generalization: by task) groups each run set's
runs by that key, and the loss-vs-N scatter fits a line per group.

Building needs no server (``--print``); saving needs a W&B login: ``wandb-workspaces`` calls the
W&B API with the user's key.
"""

from __future__ import annotations

from typing import Any

from lightning_dims.compat import workspace_wire_form
from lightning_dims.tracking.dashboard_spec import DashboardSpec, Key, Panel, PanelSection

__all__ = [
    "build_panel",
    "build_report",
    "build_workspace",
    "domain_runsets",
    "panel_metric",
    "run_filters",
    "save_dashboards",
    "section_title",
    "workspace_wire_spec",
]


def _modules():
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces import expr

    return ws, wr, expr


def panel_metric(key: Key) -> Any:
    """The ``wandb-workspaces`` form of ``key``: ``SummaryMetric``, ``Config`` or a history name."""
    _, wr, _ = _modules()
    if key.section == "summary":
        return wr.SummaryMetric(key.name)
    if key.section == "config":
        return wr.Config(key.name)
    return key.name


def build_panel(panel: Panel) -> Any:
    """One ``wandb-workspaces`` panel (a new object each call: panels carry their own ids)."""
    _, wr, _ = _modules()
    if panel.kind == "scatter":
        ranges = {"range_x": panel.equal_range, "range_y": panel.equal_range} if panel.equal_range else {}
        return wr.ScatterPlot(
            title=panel.title, x=panel_metric(panel.x), y=panel_metric(panel.y[0]),
            log_x=panel.log_x or None, log_y=panel.log_y or None, regression=panel.fit_line or None, **ranges,
        )  # fmt: skip
    if panel.kind == "line":
        return wr.LinePlot(
            title=panel.title, x=panel.x.name, y=[key.name for key in panel.y],
            log_x=panel.log_x or None, log_y=panel.log_y or None,
        )  # fmt: skip
    if panel.kind == "bar":
        return wr.BarPlot(
            title=panel.title, metrics=[key.name for key in panel.y], orientation="v",
            groupby=panel_metric(panel.groupby), groupby_aggfunc="mean", groupby_rangefunc="minmax",
        )  # fmt: skip
    if panel.kind == "parallel":
        return wr.ParallelCoordinatesPlot(
            title=panel.title, columns=[wr.ParallelCoordinatesPlotColumn(metric=panel_metric(key)) for key in panel.y]
        )
    raise ValueError(f"unknown panel kind {panel.kind!r}")


def run_filters(spec: DashboardSpec, **config: str) -> list:
    """Finished runs (of the spec's sweep, if any) whose config has the given values."""
    _, _, expr = _modules()
    filters = [expr.Metric("State") == "finished"]
    if spec.sweep:
        filters.append(expr.Metric("Sweep") == spec.sweep)
    filters += [expr.Config(key) == value for key, value in config.items()]
    return filters


def section_title(section: PanelSection, arch: str | None = None) -> str:
    if arch is not None:
        return f"{section.title}: {arch}"
    return f"{section.title} (all architectures; per architecture in the report)" if section.per_arch else section.title


def build_workspace(spec: DashboardSpec) -> Any:
    """The workspace (see the module docstring)."""
    ws, _, expr = _modules()
    runset = ws.RunsetSettings(
        filters=run_filters(spec),
        groupby=[expr.Config(spec.color_by.name)],
        group_colors=dict(spec.colors),
    )
    sections = [
        ws.Section(name=section_title(section), panels=[build_panel(panel) for panel in section.panels], is_open=True)
        for section in spec.sections
    ]
    return ws.Workspace(entity=spec.entity, project=spec.project, name=spec.name, sections=sections, runset_settings=runset)


def domain_runsets(spec: DashboardSpec, arch: str | None, group_by: Key | None = None) -> list:
    """One run set per domain (named after it), of ``arch``'s runs when given, its runs grouped by ``group_by``."""
    _, wr, _ = _modules()
    only = {"arch": arch} if arch else {}
    grouping = [f"config.{group_by.name}"] if group_by is not None else []
    return [
        wr.Runset(
            entity=spec.entity, project=spec.project, name=domain,
            filters=run_filters(spec, **only, **{spec.color_by.name: domain}), groupby=grouping,
        )  # fmt: skip
        for domain in spec.colors
    ]


def build_report(spec: DashboardSpec) -> Any:
    """The report (see the module docstring); its run sets are bound to the project when saved."""
    _, wr, _ = _modules()
    scope = f"sweep {spec.sweep} of {spec.entity}/{spec.project}" if spec.sweep else f"{spec.entity}/{spec.project}"
    blocks: list = [
        wr.P(
            f"The paper's quantities over the finished runs of {scope}, one run set per domain. "
            f"d_repr is the {spec.estimator} estimate on the penultimate layer; in the d_repr vs d_data panel "
            "both axes span the same range, so its diagonal is y = x."
        )
    ]
    for section in spec.sections:
        for arch in spec.archs if section.per_arch else (None,):
            blocks += [
                wr.H2(section_title(section, arch)),
                wr.PanelGrid(
                    runsets=domain_runsets(spec, arch, section.group_by),
                    panels=[build_panel(panel) for panel in section.panels],
                ),
            ]
    return wr.Report(entity=spec.entity, project=spec.project, title=spec.name, blocks=blocks, width="fluid")


def workspace_wire_spec(spec: DashboardSpec) -> dict:
    """The workspace exactly as it would be sent to W&B (no server needed)."""
    return workspace_wire_form(build_workspace(spec))


def save_dashboards(spec: DashboardSpec) -> tuple[str, str]:
    """Create the workspace and the report in W&B; their URLs."""
    workspace = build_workspace(spec).save()
    report = build_report(spec).save()
    return workspace.url, report.url
