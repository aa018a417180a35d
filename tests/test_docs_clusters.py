"""docs/clusters.md shows the sbatch script the documented command submits: checked against the code."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from lightning_dims.commands.sweep import build_parser, cluster_options
from lightning_dims.sweep.grid import expand_grid, load_sweep
from lightning_dims.sweep.launch import plan_tasks, sbatch_script

DOC = Path(__file__).resolve().parents[1] / "docs" / "clusters.md"
DOC_PYTHON = "/shared/lab/venv/bin/python"


def bash_blocks(section: str) -> list[str]:
    text = DOC.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_the_documented_slurm_script_is_what_the_documented_command_submits():
    command, script = bash_blocks("SLURM through submitit")[:2]
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:2] == ["lightning-dims", "sweep"]
    args = build_parser().parse_args(words[2:])
    options = cluster_options(args)
    runs = expand_grid(load_sweep(args.sweep), cwd=Path.cwd())
    results = Path(args.results)
    tasks = plan_tasks(runs, results, Path.cwd(), args.launcher, options, args.tasks, args.runs_per_device, args.workers)
    assert len(runs) == 972 and len(tasks) == 122 and sorted({len(t.runs) for t in tasks}) == [7, 8]
    generated = sbatch_script(results / "jobs", options, len(tasks)).replace(sys.executable, DOC_PYTHON)
    assert generated.strip() == script.strip()
