"""``lightning-dims dashboard``: the spec of the paper's panels, the W&B workspace built from it (offline),
the per-architecture report sections, and the errors. That every key is logged by a real run is
tested in ``test_wandb_results.py``."""

from __future__ import annotations

import json

import pytest

from lightning_dims.commands.dashboard import main
from lightning_dims.models.registry import list_models
from lightning_dims.tracking import names
from lightning_dims.tracking.dashboard_spec import DEFAULT_D_MAX, DOMAIN_COLORS, config, dashboard_spec
from lightning_dims.tracking.dashboards import build_report, build_workspace


def printed(capsys, *args: str) -> dict:
    assert main(["--entity", "team", "--project", "dims", "--print", *args]) == 0
    return json.loads(capsys.readouterr().out)


def accessor_key(accessor: str) -> str:
    """``config:n_train.value`` -> ``config:n_train``; ``summary:test/loss`` stays."""
    return accessor.removesuffix(".value")


def wire_keys(workspace: dict) -> set[str]:
    """Every key the workspace as sent to W&B plots, groups or colours by, written ``section:name``."""
    view = workspace["spec"]["section"]
    keys = {f"config:{accessor_key(group['name'])}" for group in view["runSets"][0]["grouping"]}
    for section in view["panelBankConfig"]["sections"]:
        for panel in section["panels"]:
            conf, kind = panel["config"], panel["viewType"]
            if kind == "Scatter Plot":
                keys |= {accessor_key(conf["xAxis"]), accessor_key(conf["yAxis"])}
            elif kind == "Run History Line Plot":
                keys |= {f"history:{conf['xAxis']}"} | {f"history:{metric}" for metric in conf["metrics"]}
            elif kind == "Bar Chart":
                keys |= {f"summary:{metric}" for metric in conf["metrics"]} | {f"config:{accessor_key(conf['groupBy'])}"}
            elif kind == "Parallel Coordinates Plot":
                keys |= {accessor_key(column["accessor"]) for column in conf["columns"]}
            else:
                raise AssertionError(f"unexpected panel {kind}")
    return keys


def test_print_gives_the_spec_and_the_workspace_with_exactly_the_spec_keys(capsys):
    document = printed(capsys, "--sweep", "sw42")
    spec = dashboard_spec("team", "dims", "sw42", list_models())
    assert document["spec"] == json.loads(json.dumps(spec.to_json()))
    assert wire_keys(document["workspace"]) | {"config:task"} == {str(key) for key in spec.keys()}  # task: the report's
    assert {str(key) for key in spec.keys()} == {
        "summary:test/loss", "config:n_train", "summary:data/log_n_over_d_data", "summary:fgsm/loss_penalty",
        "summary:data/label_sharpness", "summary:d_repr/penultimate/twonn", "summary:data/d_data",
        "history:d_repr/penultimate/twonn", "history:trainer/global_step", "config:dataset", "config:arch",
        "config:domain", "config:task",
    }  # fmt: skip
    view = document["workspace"]["spec"]["section"]
    filters = view["runSets"][0]["filters"]["filters"]
    assert [(f["key"]["name"], f["value"]) for f in filters] == [("state", "finished"), ("sweep", "sw42")]
    assert sorted(view["customRunColors"].values()) == sorted(DOMAIN_COLORS.values())
    assert document["workspace"]["displayName"] == "lightning-dims: sweep sw42"


def test_panels_show_the_papers_figures(capsys):
    view = printed(capsys, "--d-max", "25")["workspace"]["spec"]["section"]
    panels = {p["config"]["chartTitle"]: p["config"] for s in view["panelBankConfig"]["sections"] for p in s["panels"]}
    scaling = panels["test loss vs N (log-log): slope -1/d_data"]
    assert (scaling["xAxis"], scaling["yAxis"], scaling["xAxisLogScale"], scaling["yAxisLogScale"]) == (
        "config:n_train.value", "summary:test/loss", True, True,
    )  # fmt: skip
    assert scaling["showLinearRegression"] is True  # a fitted line per run group: per task in the report
    law = panels["test loss vs ln N / d_data (log y): linear in the law"]
    assert (law["xAxis"], law.get("xAxisLogScale"), law["yAxisLogScale"]) == ("summary:data/log_n_over_d_data", None, True)
    diagonal = panels["d_repr (penultimate, twonn) vs d_data: diagonal is y = x"]
    assert (diagonal["xAxisMin"], diagonal["xAxisMax"]) == (diagonal["yAxisMin"], diagonal["yAxisMax"]) == (0.0, 25.0)
    robustness = panels["FGSM loss penalty vs K_F"]
    assert (robustness["xAxis"], robustness["yAxis"]) == ("summary:data/label_sharpness", "summary:fgsm/loss_penalty")
    assert panels["K_F per dataset"]["groupBy"] == "dataset.value" and panels["K_F per dataset"]["groupAgg"] == "mean"
    columns = [c["accessor"] for c in panels["arch / N / dataset -> test loss"]["columns"]]
    assert columns == ["config:arch.value", "config:n_train.value", "config:dataset.value", "summary:test/loss"]
    assert [f["key"]["name"] for f in view["runSets"][0]["filters"]["filters"]] == ["state"]  # no --sweep: all runs


def test_report_has_one_generalization_section_per_arch_with_a_run_set_per_domain_grouped_by_task():
    spec = dashboard_spec("team", "dims", "sw42", ["resnet18", "vgg16"], estimator="mle")
    report = build_report(spec)
    headings = [block.text for block in report.blocks if type(block).__name__ == "H2"]
    assert headings == [
        "Generalization: resnet18", "Generalization: vgg16", "Robustness", "Representations", "Datasets", "Grid",
    ]  # fmt: skip
    grids = [block for block in report.blocks if type(block).__name__ == "PanelGrid"]
    assert [runset.name for runset in grids[0].runsets] == list(DOMAIN_COLORS)
    assert [runset.groupby for runset in grids[0].runsets] == [["config.task"]] * len(DOMAIN_COLORS)  # one line per task
    assert grids[2].runsets[0].groupby == []  # other sections: runs as they are
    assert grids[1].runsets[1].filters == (
        """Metric("State") == 'finished' and Metric("Sweep") == 'sw42' and Config("arch") == 'vgg16' """
        """and Config("domain") == 'medical'"""
    )
    assert grids[2].runsets[0].filters == (
        """Metric("State") == 'finished' and Metric("Sweep") == 'sw42' and Config("domain") == 'natural'"""
    )
    assert grids[3].panels[0].y.name == names.d_repr("mle") == "d_repr/penultimate/mle"
    workspace = build_workspace(spec)
    assert [section.name for section in workspace.sections][0] == (
        "Generalization (all architectures; per architecture in the report)"
    )


def test_without_a_login_the_dashboard_says_how_to_log_in(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert main(["--entity", "team", "--project", "dims"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lightning-dims dashboard: error: could not create the dashboards in W&B (")
    assert err.endswith("log in with `wandb login` (or set WANDB_API_KEY), or use --print to see the spec without a server")


def test_bad_values_are_one_line_errors(capsys):
    assert main(["--entity", "team", "--project", "dims", "--d-max", "0", "--print"]) == 2
    assert capsys.readouterr().err.strip() == "lightning-dims dashboard: error: d_max must be positive, got 0.0"
    with pytest.raises(ValueError, match="'name' is not a run config key"):
        config("name")  # the ambiguous flat key the design replaced with dataset
    assert DEFAULT_D_MAX > 17.8  # the paper's largest d_data (ImageNet) fits on the y = x panel
