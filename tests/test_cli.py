"""The command-line tool (personalization-gym, python -m sb3_entropy): its commands, help, list, report, and the
Quick start's three agents equal to the same runs of the five-agent study."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, call_script, tiny_experiment

from personalization_gym import TASK_IDS
from sb3_entropy.study import available_experiments, load_experiment
from sb3_entropy.study.cli import COMMANDS, main

TINY = tiny_experiment(steps=96)


def tool(*args: str) -> tuple[int, str, str]:
    """The tool's main() in this process: exit status, standard output, standard error."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = main(list(args))
        except SystemExit as exit:
            status = exit.code
    return status, stdout.getvalue(), stderr.getvalue()


def test_the_console_script_and_python_m_are_the_same_tool() -> None:
    script = shutil.which("personalization-gym")
    assert script is not None, "pip install -e . installs the console script personalization-gym"
    by_script = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    by_module = subprocess.run(
        [sys.executable, "-m", "sb3_entropy", "--help"], capture_output=True, text=True, timeout=120
    )
    assert by_script.returncode == by_module.returncode == 0
    assert by_script.stdout == by_module.stdout
    assert all(f"  {command} " in by_script.stdout for command in COMMANDS)


def test_no_command_or_an_unknown_one_is_a_usage_error() -> None:
    status, out, _ = tool()
    assert status == 2 and out.startswith("usage: personalization-gym COMMAND")
    status, _, err = tool("reproduec", "music")
    assert status == 2
    assert err.strip().endswith(
        "error: unknown command 'reproduec'; valid: reproduce, report, tune, train, evaluate, list"
    )


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help_with_examples(command: str) -> None:
    status, out, _ = tool(command, "--help")
    assert status == 0
    assert out.startswith(f"usage: personalization-gym {command} ")
    examples = out.split("examples:\n")[1]
    assert f"personalization-gym {command}" in examples or command == "report"
    if command == "report":
        assert "personalization-gym report music" in examples and "nothing trains" in out


def test_list_names_every_task_and_every_experiment() -> None:
    status, out, _ = tool("list")
    assert status == 0
    tasks, experiments = out.split("\n\n")
    assert [line.split()[0] for line in tasks.splitlines()[1:]] == list(TASK_IDS)
    rows = [line.split() for line in experiments.splitlines()[1:]]
    assert [row[0] for row in rows] == available_experiments()
    music = load_experiment("music")
    (row,) = [row for row in rows if row[0] == "music"]
    assert row == ["music", music.task, *music.agents, f"{music.steps:,}", "steps", str(music.seeds), "seeds", "tuned"]
    assert tool("list", "experiments")[1] == experiments
    assert tool("list", "nothing")[0] == 2


def test_report_writes_the_same_report_again_from_the_stored_runs(tmp_path: Path) -> None:
    experiment = tmp_path / "tiny.yml"
    experiment.write_text(TINY)
    out = tmp_path / "out"
    args = (str(experiment), "--seeds", "2", "--workers", "1", "--out", str(out))
    status, _, err = tool("reproduce", *args)
    assert status == 0, err
    first_report, results = (out / "report.md").read_text(), (out / "tiny" / "results.csv").read_bytes()
    for written in (out / "report.md", out / "tiny" / "results.csv", out / "tiny" / "overview.png"):
        written.unlink()
    runs = sorted(p.name for p in (out / "tiny" / "runs").iterdir())

    status, printed, err = tool("report", *args)
    assert status == 0, err
    assert "runs to train" not in printed  # nothing trained
    assert sorted(p.name for p in (out / "tiny" / "runs").iterdir()) == runs
    assert (out / "tiny" / "results.csv").read_bytes() == results and (out / "tiny" / "overview.png").is_file()
    times = re.compile(
        r"wall time \d+ s, training \d+ s summed over the runs( \(4 of them kept from an earlier call\))?"
    )
    assert times.sub("TIMES", (out / "report.md").read_text()) == times.sub("TIMES", first_report)

    (out / "tiny" / "runs" / "dqn_seed1.json").unlink()
    status, _, err = tool("report", *args)
    assert status == 2
    assert (
        f"tiny: 1 of 4 runs are not stored in {out / 'tiny' / 'runs'} with these settings (dqn seed 1: not stored)"
        in err
    )
    assert "run them first (the same arguments to personalization-gym reproduce)" in err
    assert not (out / "tiny" / "runs" / "dqn_seed1.json").exists()
    status, _, err = tool("report", *args[:-2], "--seeds", "3", "--out", str(out))
    assert status == 2 and "with these settings" in err  # a third seed was never run
    status, _, err = tool("report", *args[:-2], "--steps", "128", "--out", str(out))  # the runs trained 96 steps
    assert status == 2
    assert "a2c seed 0: settings changed since the saved run (timesteps: 96 then, 128 now); a2c seed 1: " in err


def test_the_paper_agents_alone_give_bit_for_bit_the_runs_of_the_five_agent_study(tmp_path: Path) -> None:
    """The Quick start's three agents are the same runs as in the full music study: same seeds, same numbers."""
    common = ("music", "--quick", "--steps", "320", "--seeds", "2", "--no-download")
    full = call_script("reproduce.py", *common, "--out", str(tmp_path / "all"))
    assert full.returncode == 0, full.stderr
    paper = call_script("reproduce.py", *common, "--agents", "a2c", "ppo", "dqn", "--out", str(tmp_path / "paper"))
    assert paper.returncode == 0, paper.stderr
    with open(tmp_path / "all" / "music" / "results.csv") as stream:
        every_row = list(csv.reader(stream))
    with open(tmp_path / "paper" / "music" / "results.csv") as stream:
        paper_rows = list(csv.reader(stream))
    kept = [row for row in every_row[1:] if row[1] in ("a2c", "ppo", "dqn")]
    assert paper_rows[0] == every_row[0] and len(paper_rows) > 3 * 2
    assert sorted(paper_rows[1:]) == sorted(kept)  # every value, as written, bit for bit
    report = (tmp_path / "paper" / "report.md").read_text()
    assert "Q-learning is represented by DQN alone: the family's mean is that one algorithm's" in report
    assert "represented by" not in (tmp_path / "all" / "report.md").read_text()


def test_the_scripts_are_shims_of_the_tool() -> None:
    for name in ("reproduce", "tune", "train"):
        shim = (PROJECT_ROOT / "scripts" / f"{name}.py").read_text()
        assert f"from sb3_entropy.study.cli import {name}" in shim and len(shim.splitlines()) < 20
    result = call_script("reproduce.py", "--help")
    assert result.returncode == 0 and "personalization-gym reproduce music --agents a2c ppo dqn" in result.stdout
