"""report.md, figures and fits.json from results records: what they say, that no label is cut, specs never mixed."""

import json
import math

import pytest

from lightning_dims.analysis import figures
from lightning_dims.analysis.analyse import analyse
from lightning_dims.analysis.report import alpha_figure, centre_figure, write_report
from lightning_dims.data.spec import SpecMismatchError
from tests.helpers.analysis_records import law_record

TASKS = [  # dataset, domain, d, K_F, classes, options
    ("mnist", "natural", 9, 1.0e-3, [6, 7], None), ("mnist", "natural", 11, 0.9e-3, [4, 5], None),
    ("fashionmnist", "natural", 14, 0.7e-3, [6, 7], None), ("pneumoniamnist", "medical", 10, 2e-3, [0, 1], None),
    ("brain-tissue", "medical", 12, 2.5e-3, [0, 1], None), ("breastmnist", "medical", 8, 3e-3, [0, 1], None),
] + [("synthetic", "synthetic", d, 1e-3, [0, 1], {"d": d, "contrast": 1.0}) for d in (2, 4, 6, 8)] + [
    ("synthetic", "synthetic", 4, 1e-3 / c, [0, 1], {"d": 4, "contrast": c}) for c in (0.7, 0.5, 0.35)]


def records(spec="32px-1ch-max255"):
    out = []
    for t, (dataset, domain, d, k_f, classes, options) in enumerate(TASKS):
        for s, n in enumerate((100, 200, 400, 800)):
            noise = 0.04 * math.sin(5 * t + 3 * s)
            best = None if s < 3 or t != 0 else 0.2  # the last epoch of mnist 6 vs 7 at N = 800 went wrong
            out.append(law_record(f"{spec}-{t}-{n}", dataset, domain, n, d, k_f, classes=classes, options=options,
                                  noise=noise, penalty=300 * k_f + 0.05 * math.cos(7 * t + s), spec=spec, best_loss=best))
    out.append(law_record("crashed", "mnist", "natural", 100, 9, 1e-3, classes=[6, 7], status="failed"))
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    fits = write_report(records(), out, measurements=[
        {"dataset": "mnist", "domain": "natural", "classes": [6, 7], "n": 1750, "m": 1000, "d_data": 8.1, "label_sharpness": 2.2e-4,
         "preprocessing": {"key": "224px-1ch-max255"}},
        {"dataset": "pneumoniamnist", "domain": "medical", "classes": [0, 1], "n": 1750, "m": 1000, "d_data": 11.0, "label_sharpness": 4e-4,
         "preprocessing": {"key": "224px-1ch-max255"}},
        {"dataset": "mnist", "domain": "natural", "classes": [4, 5], "n": 1750, "m": 1000, "d_data": 9.0, "label_sharpness": 3e-3,
         "preprocessing": {"key": "32px-1ch-max255"}},  # not the paper's spec: left out of the comparison
    ])
    return out, fits, (out / "report.md").read_text()


def test_report_writes_every_file(report):
    out, fits, _ = report
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "fits.json", "loss_vs_n_resnet18.png", "alpha_vs_inverse_d_resnet18.png",
            "loss_at_centre_vs_k_f_resnet18.png", "loss_vs_d_data_each_n_resnet18.png", "penalty_vs_k_f_resnet18.png",
            "d_repr_vs_d_data_resnet18.png", "series_1.png", "series_2.png"} <= names
    assert json.loads((out / "fits.json").read_text()) == json.loads(json.dumps(fits, default=str))


def test_fits_hold_the_known_law(report):
    _, fits, _ = report
    assert fits["n_runs"] == 52 and fits["reference_n"] == {"resnet18": 800}
    assert fits["exponents"]["resnet18/synthetic d=2, contrast=1.0"]["alpha"] == pytest.approx(0.5, abs=0.05)
    assert [s["series"]["name"] for s in fits["series"]] == ["synthetic: d varied at contrast=1.0", "synthetic: contrast varied at d=4"]
    assert fits["series"][1]["centre_loss_vs_sharpness"]["fit"]["slope"] == pytest.approx(1.0, abs=0.1)
    assert fits["run_flags"] == {"32px-1ch-max255-0-800": ["final epoch worse"]}
    assert {"what": "run", "scope": "crashed", "why": "status 'failed', not finished"} in fits["skipped"]


def test_report_states_findings_tasks_and_the_paper_comparison(report):
    _, fits, text = report
    for heading in ("## Findings", "## Tasks", "## The law across tasks", "## Controlled series", "(the paper's Fig. 2)",
                    "## Robustness", "## Representations", "## Runs", "beside its Figure 1", "## Skipped"):
        assert heading in text, heading
    assert "| resnet18 | mnist 6 vs 7 | natural | 100..800 (4) | 4 |" in text
    assert "| resnet18 | mnist 4 vs 5 | natural |" in text
    assert "| MNIST | natural | 9.2 | 1.58 | mnist 6 vs 7 | 1750 | 1000 | 8.1 | 2.2 |" in text
    assert "| BraTS | medical | 10.9 | 2.01 | not measured here" in text
    assert "| pneumoniamnist (not in the paper) | medical | - | - | pneumoniamnist | 1750 | 1000 | 11 | 4 |" in text
    assert ("at M = 1000, 1 medical and 1 natural datasets (medical: pneumoniamnist 4; natural: mnist 2.2): not computed "
            "(a ratio interval needs at least 2 values on each side, got 1 and 1)") in text  # one dataset a side: no interval
    assert "mnist 4 vs 5 | 1750" not in text
    assert "inverted" in text  # the K_F definition difference is explained
    for finding in fits["findings"]:
        assert finding["text"] in text
    assert "final epoch worse" in text and "| 0.2 |" in text  # test and test_best side by side


def test_every_scope_shown_says_primary_or_exploratory_with_its_holm_reading(report):
    _, fits, text = report
    for law, scopes in fits["law_scopes"].items():  # the series varying the law's factor is primary; all tasks is not
        assert [(s["series"] is not None, s["primary"]) for s in scopes] == [(True, True), (False, False)], law
        assert scopes[1]["adjusted"]["family"] == 1 and scopes[1]["adjusted"]["holm_zero"] == scopes[1]["adjusted"]["p_zero"]
    across = [line for line in text.splitlines() if line.startswith("| resnet18 | 13 |")]
    assert len(across) == 2 and all("| exploratory (1 of 1): Holm p" in line for line in across)
    assert text.count("| primary |") == 3  # the two series' law fits and the contrast series' penalty
    assert "| resnet18 | pooled (exploratory) |" in text  # the contrast series, not the pooled scope, is primary
    penalties = fits["penalty_vs_k_f"] + [s["penalty_vs_sharpness"] for s in fits["series"] if s["penalty_vs_sharpness"]]
    family = [p for p in penalties if p["exploratory"]]
    assert len(family) == len(penalties) - 1 and all(p["holm_family"] == len(family) for p in family)
    fig2 = fits["fig2_loss_vs_d_data"]
    assert fig2 and all(s["exploratory"] and s["adjusted"]["family"] == len(fig2) for s in fig2)
    assert all(s["verdict"]["random_effects"]["method"].startswith("REML") for s in fig2)
    header = next(line for line in text.splitlines() if line.startswith("| arch | domain | N | datasets | tasks | runs |"))
    assert "random-effects slope" in header and "leave one task out" in header and "sensitivity: OLS slope" in header


def test_no_figure_label_is_cut():
    analysis = analyse(records())
    fit = analysis.alpha_vs_dimension["resnet18"]
    drawn = [
        figures.learning_curves(analysis.rows, analysis.exponents, "resnet18"),
        alpha_figure(analysis, fit),
        centre_figure(analysis, analysis.loss_vs_sharpness["resnet18"]),
        figures.loss_vs_dimension(analysis.rows, analysis.properties, analysis.fig2, "resnet18"),
        figures.penalty_vs_sharpness(analysis.rows, analysis.properties, "resnet18"),
        figures.repr_vs_data(analysis.rows, analysis.bounds, "resnet18"),
    ]
    for fig in drawn:
        renderer = fig.canvas.get_renderer()
        fig.canvas.draw()
        drawn_box = fig.get_tightbbox(renderer)  # every drawn artist: titles, labels, ticks, legends (inches)
        assert drawn_box.x0 >= -0.01 and drawn_box.y0 >= -0.01, fig.get_suptitle()
        assert drawn_box.x1 <= fig.get_figwidth() + 0.01 and drawn_box.y1 <= fig.get_figheight() + 0.01, fig.get_suptitle()
        legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        assert legends and all(len(legend.get_texts()) >= 2 for legend in legends)
        title = fig._suptitle.get_window_extent(renderer)
        boxes = [legend.get_window_extent(renderer) for legend in legends] + [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
        assert not any(title.overlaps(box) for box in boxes), fig.get_suptitle()
        legend_box = legends[0].get_window_extent(renderer)
        assert not any(legend_box.overlaps(ax.get_tightbbox(renderer)) for ax in fig.axes if ax.get_visible())


def test_mixed_specs_are_refused_unless_one_is_chosen(tmp_path):
    mixed = records() + records(spec="224px-1ch-max255")
    with pytest.raises(SpecMismatchError, match="--spec"):
        write_report(mixed, tmp_path)
    assert write_report(mixed, tmp_path, spec="224px-1ch-max255")["n_runs"] == 52


def test_nothing_to_report_says_why_each_record_was_left_out():
    small = [{**law_record(f"r{n}", "digits", "natural", n, 4.0, 0.1), "n_test": 40} for n in (100, 200)]
    failed = law_record("f", "digits", "natural", 300, 4.0, 0.1, status="failed")
    with pytest.raises(ValueError) as error:
        analyse([*small, failed])
    assert str(error.value) == (
        "nothing to report: no finished run left: 3 left out, 2 tested on 40 images, below the floor of 50; "
        "1 status 'failed', not finished"
    )
