"""report.md, figures and fits.json from results records; spec mixing refused."""

import json
import math

import pytest

from lightning_dims.analysis.report import write_report
from lightning_dims.data.spec import SpecMismatchError


def record(i, domain, d_data, k_f, n, spec="32px-1ch-max255", status="finished"):
    loss = math.exp(math.log(k_f) - math.log(n) / d_data + 8)
    return {
        "run_id": f"run{i}", "status": status, "dataset": f"{domain}{int(d_data)}", "domain": domain,
        "arch": "resnet18", "n_train": n, "seed": 0, "preprocessing": {"key": spec},
        "label_sharpness": k_f, "d_data": d_data, "test": {"loss": loss, "acc": 0.9},
        "fgsm": {"2.0": {"clean_loss": loss, "attacked_loss": loss + 1e3 * k_f, "loss_penalty": 1e3 * k_f,
                         "clean_acc": 0.9, "attacked_acc": 0.5, "acc_penalty": 0.4}},
        "d_repr": {"layer4": {"twonn": d_data * 0.6}},
    }


def records():
    out, i = [], 0
    for domain, k_f, dims in (("medical", 3e-4, (6, 10, 16)), ("natural", 1e-4, (9, 12, 18))):
        for d in dims:
            for n in (100, 200, 400):
                out.append(record(i, domain, d, k_f * (1 + 0.1 * d), n))
                i += 1
    out.append(record(99, "medical", 5, 1e-4, 100, status="failed"))
    return out


def test_report_writes_markdown_figures_and_fits(tmp_path):
    fits = write_report(records(), tmp_path)
    assert fits["n_runs"] == 18  # the failed run is left out
    for name in ("report.md", "fits.json", "loss_vs_d_data.png", "loss_vs_law.png", "penalty_vs_k_f.png",
                 "d_repr_vs_d_data.png", "dataset_properties.png"):
        assert (tmp_path / name).stat().st_size > 100, name
    saved = json.loads((tmp_path / "fits.json").read_text())
    assert saved["representations"] == {"n_runs": 18, "fraction_below": 1.0}
    assert saved["robustness"]["all"]["pearson"] > 0.9
    assert set(saved["generalization"]) == {"medical", "natural"}
    text = (tmp_path / "report.md").read_text()
    assert "| medical6 | medical | 3 |" in text and "Intercept gap" in text


def test_mixed_specs_are_refused_unless_one_is_chosen(tmp_path):
    mixed = records() + [record(50 + i, "natural", 9, 1e-4, n, spec="224px-1ch-max255") for i, n in enumerate((1, 2, 3))]
    with pytest.raises(SpecMismatchError, match="--spec"):
        write_report(mixed, tmp_path)
    assert write_report(mixed, tmp_path, spec="32px-1ch-max255")["n_runs"] == 18
