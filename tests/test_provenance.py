"""Every run records where it trained, and a study's report and environment.json say so, mixed or not."""

from __future__ import annotations

import json
import platform
import re
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from conftest import tiny_experiment

from sb3_entropy.study import load_experiment
from sb3_entropy.study.plans import run_experiment
from sb3_entropy.study.report import write_outputs, write_report
from sb3_entropy.study.runs import describe, run_environment, summarize_environments


def test_the_environment_is_this_process_s() -> None:
    environment = run_environment()
    assert environment["python"] == platform.python_version()
    for package in ("torch", "stable-baselines3", "gymnasium", "numpy", "sb3-contrib"):
        assert environment[package] == metadata.version(package)
    assert environment["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
    assert environment["numpy_blas"] == f"{blas['name']} {blas['version']}"
    assert environment["torch_blas"] in torch.__config__.show()
    e = environment
    assert describe(environment) == (
        f"Python {e['python']}, torch {e['torch']} ({e['torch_cpu_capability']} kernels, BLAS {e['torch_blas']}), "
        f"stable-baselines3 {e['stable-baselines3']}, sb3-contrib {e['sb3-contrib']}, gymnasium {e['gymnasium']}, "
        f"numpy {e['numpy']}, numpy's BLAS {e['numpy_blas']}; CPU {e['cpu']} ({platform.system()} {platform.machine()})"
    )
    assert describe({}).startswith("Python ?, torch ? (? kernels, BLAS ?)")


def test_summaries_count_runs_per_environment() -> None:
    here, there = {"python": "3.11.7"}, {"python": "3.12.1"}
    assert summarize_environments([here, there, here, None]) == [
        (describe(here), 2),
        (describe(there), 1),
        ("not recorded (stored before runs recorded it)", 1),
    ]


def test_a_study_records_each_run_s_environment(tmp_path: Path) -> None:
    (tmp_path / "tiny.yml").write_text(tiny_experiment())
    experiment = load_experiment(str(tmp_path / "tiny.yml"))
    out = tmp_path / "out"
    result = run_experiment(experiment, 2, out, report=lambda _: None)
    write_outputs(result, out)
    here = run_environment()
    stored = json.loads((out / "tiny" / "runs" / "a2c_seed1.json").read_text())
    assert stored["environment"] == here
    written = json.loads((out / "tiny" / "environment.json").read_text())
    assert written == {
        "environments": [{"environment": here, "runs": ["a2c_seed0", "a2c_seed1", "dqn_seed0", "dqn_seed1"]}]
    }
    report = write_report([result], out / "report.md").read_text()
    assert f"Trained on: {describe(here)}.\n" in report

    # a run stored by an older version (no environment) and one from another machine: the report says so
    older = out / "tiny" / "runs" / "dqn_seed1.json"
    older.write_text(json.dumps({k: v for k, v in json.loads(older.read_text()).items() if k != "environment"}))
    other = out / "tiny" / "runs" / "a2c_seed0.json"
    elsewhere = json.loads(other.read_text())
    elsewhere["environment"] = here | {"torch_cpu_capability": "AVX2", "cpu": "Intel Xeon"}
    other.write_text(json.dumps(elsewhere))
    resumed = run_experiment(experiment, 2, out, report=lambda _: None, resume=True)
    assert resumed.resumed_runs == 4
    write_outputs(resumed, out)
    report = write_report([resumed], out / "report.md").read_text()
    paragraph = report.split("Trained in 3 environments")[1].split("| agent |")[0]
    assert re.findall(r"^- (\d) runs?: ", paragraph, re.M) == ["2", "1", "1"]
    assert f"- 2 runs: {describe(here)}" in paragraph and "(AVX2 kernels" in paragraph
    assert "- 1 run: not recorded (stored before runs recorded it)" in paragraph
    groups = json.loads((out / "tiny" / "environment.json").read_text())["environments"]
    assert [group["runs"] for group in groups] == [["a2c_seed0"], ["a2c_seed1", "dqn_seed0"], ["dqn_seed1"]]
    assert groups[2]["environment"] is None
