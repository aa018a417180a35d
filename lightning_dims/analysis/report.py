"""``report.md``, PNG figures and ``fits.json`` from a folder of results records.

Only runs measured under one preprocessing spec are compared (K_F and d_data change with size,
channels and intensity scaling): a folder holding several specs needs ``spec=KEY``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning_dims.analysis import figures
from lightning_dims.analysis.collect import rows_from_records
from lightning_dims.analysis.fits import (
    domain_gap,
    generalization_fits,
    group_rows,
    representation_summary,
    robustness_fits,
)
from lightning_dims.data.spec import SpecMismatchError


def select_spec(rows: list[dict], spec: str | None) -> tuple[list[dict], str | None]:
    """The rows of one preprocessing spec; refuses to mix specs silently."""
    keys = sorted({str(r["preprocessing"]) for r in rows})
    if spec is not None:
        chosen = [r for r in rows if r["preprocessing"] == spec]
        if not chosen:
            raise SpecMismatchError(f"no finished run was measured under spec {spec!r}; the records hold {keys}")
        return chosen, spec
    if len(keys) > 1:
        raise SpecMismatchError(
            f"the records mix preprocessing specs {keys}: K_F and d_data are not comparable across them; "
            "pass --spec KEY to report one of them"
        )
    return rows, (keys[0] if keys else None)


def key_name(key: tuple) -> str:
    return "/".join(str(part) for part in key) if key else "all"


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def dataset_table(rows: Sequence[Mapping]) -> list[str]:
    lines = ["| dataset | domain | runs | d_data | K_F | mean test loss | mean test acc |", "|---|---|---|---|---|---|---|"]
    for (dataset, domain), group in sorted(group_rows(rows, ("dataset", "domain")).items()):

        def mean(field: str) -> float | None:
            values = [r[field] for r in group if isinstance(r.get(field), (int, float))]
            return sum(values) / len(values) if values else None

        lines.append(
            f"| {dataset} | {domain} | {len(group)} | {fmt(mean('d_data'))} | {fmt(mean('label_sharpness'))} "
            f"| {fmt(mean('test_loss'))} | {fmt(mean('test_acc'))} |"
        )
    return lines


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(records: Sequence[Any], out: str | os.PathLike[str], *, spec: str | None = None) -> dict:
    """Write ``report.md``, ``fits.json`` and figures into ``out``; returns the fits."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, spec_key = select_spec(rows_from_records(records), spec)
    if not rows:
        raise ValueError("no finished runs among the records: nothing to report (check --results)")
    by_domain = generalization_fits(rows, by=("domain",))
    by_domain_arch = generalization_fits(rows, by=("domain", "arch"))
    fits = {
        "spec": spec_key,
        "n_runs": len(rows),
        "generalization": {key_name(k): v for k, v in by_domain.items()},
        "generalization_by_arch": {key_name(k): v for k, v in by_domain_arch.items()},
        "domain_gap": domain_gap(by_domain),
        "robustness": {key_name(k): v for k, v in robustness_fits(rows).items()},
        "robustness_by_arch": {key_name(k): v for k, v in robustness_fits(rows, by=("arch",)).items()},
        "representations": representation_summary(rows),
    }
    paths = {
        "loss_vs_d_data": figures.loss_vs_dimension(rows, by_domain, out / "loss_vs_d_data.png"),
        "loss_vs_law": figures.loss_vs_law(rows, by_domain, out / "loss_vs_law.png"),
        "penalty_vs_k_f": figures.penalty_vs_sharpness(rows, out / "penalty_vs_k_f.png"),
        "d_repr_vs_d_data": figures.repr_vs_data(rows, out / "d_repr_vs_d_data.png"),
        "dataset_properties": figures.dataset_properties(rows, out / "dataset_properties.png"),
    }
    write_atomic(out / "fits.json", json.dumps(fits, indent=2, default=str) + "\n")

    lines = ["# lightning-dims report", "", f"{len(rows)} finished runs, preprocessing spec `{spec_key}`.", ""]
    lines += ["## Datasets", "", *dataset_table(rows), "", f"![dataset properties]({paths['dataset_properties'].name})", ""]
    lines += ["## Generalization: log L = a + b d_data and log L = a' + s log N / d_data", ""]
    lines += ["| group | runs | b (per dim) | R^2 | s | s std. err. | R^2 |", "|---|---|---|---|---|---|---|"]
    for name, entry in {**fits["generalization"], **fits["generalization_by_arch"]}.items():
        a, b = entry["log_loss_vs_d_data"], entry["log_loss_vs_log_n_over_d_data"]
        lines.append(
            f"| {name} | {entry['n_runs']} | {fmt(a['slope'])} | {fmt(a['r2'])} | {fmt(b['slope'])} "
            f"| {fmt(b['slope_stderr'])} | {fmt(b['r2'])} |"
        )
    gap = fits["domain_gap"]
    if gap:
        lines += ["", f"Intercept gap medical - natural: {fmt(gap['intercept_gap'])}; "
                  f"log(K_F medical / K_F natural): {fmt(gap['log_label_sharpness_ratio'])} (the law predicts these agree)."]
    lines += ["", f"![loss vs d_data]({paths['loss_vs_d_data'].name}) ![law]({paths['loss_vs_law'].name})", ""]
    lines += ["## Robustness: FGSM loss penalty vs K_F", "", "| group | runs | Pearson [95% CI] | Spearman [95% CI] |", "|---|---|---|---|"]
    for name, corr in {**fits["robustness"], **fits["robustness_by_arch"]}.items():
        lines.append(
            f"| {name} | {corr['n']} | {fmt(corr['pearson'])} [{fmt(corr['pearson_ci'][0])}, {fmt(corr['pearson_ci'][1])}] "
            f"| {fmt(corr['spearman'])} [{fmt(corr['spearman_ci'][0])}, {fmt(corr['spearman_ci'][1])}] |"
        )
    lines += ["", f"![penalty vs K_F]({paths['penalty_vs_k_f'].name})", ""]
    rep = fits["representations"]
    lines += ["## Representations", "", f"{rep['n_runs']} runs with d_repr; fraction with d_repr <= d_data: {fmt(rep['fraction_below'])}.",
              "", f"![d_repr vs d_data]({paths['d_repr_vs_d_data'].name})", ""]
    write_atomic(out / "report.md", "\n".join(lines))
    return fits
