"""The study's progress display: the share of the work done, the time left, plain lines off a terminal, and the
workers' progress messages reaching the parent process."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from conftest import tiny_experiment

from sb3_entropy.study import execution, load_experiment, plans
from sb3_entropy.study.execution import RUN_COST, StudyProgress, clock

TINY = tiny_experiment(steps=320)


class Recorded(StudyProgress):
    """A StudyProgress that keeps every worker message it was handed."""

    def __init__(self, *args, **kwargs) -> None:
        self.messages: list[tuple] = []
        super().__init__(*args, **kwargs)

    def advanced(self, key, timesteps: int) -> None:
        self.messages.append((key, timesteps))
        super().advanced(key, timesteps)


def test_clock() -> None:
    assert [clock(s) for s in (0, 59.4, 75.2, 3599.6, 3725)] == ["0:00", "0:59", "1:15", "1:00:00", "1:02:05"]


def test_share_done_weighs_each_run_by_its_agents_cost_and_its_steps() -> None:
    lines: list[str] = []
    runs = {("a2c", 0): ("a2c", 100), ("trpo", 0): ("trpo", 300), ("mine", 0): ("mine", 50)}
    progress = StudyProgress("demo", runs, kept=0, workers=2, stream=io.StringIO(), print_line=lines.append)
    total = RUN_COST["a2c"] * 100 + RUN_COST["trpo"] * 300 + 1.0 * 50  # an unknown algorithm counts as 1
    assert lines == ["demo: 3 runs to train, 2 at a time"]
    StudyProgress("on_ray", runs, kept=0, workers=None, stream=io.StringIO(), print_line=lines.append).close()
    StudyProgress("few", runs, kept=2, workers=4, stream=io.StringIO(), print_line=lines.append).close()
    assert lines[1:] == [
        "on_ray: 3 runs to train, as Ray tasks",
        "few: 1 run to train, 2 kept from an earlier call, one at a time",
    ]
    progress.advanced(("trpo", 0), 150)
    assert progress.share_done() == pytest.approx(RUN_COST["trpo"] * 150 / total, rel=1e-12)
    progress.advanced(("a2c", 0), 10_000)  # a report past the run's steps counts the run whole, no more
    assert progress.share_done() == pytest.approx((RUN_COST["trpo"] * 150 + RUN_COST["a2c"] * 100) / total)
    progress.finished(("mine", 0), "mine done")
    assert re.fullmatch(r"mine done \[1/3 runs, 0:0\d elapsed, about 0:\d\d left\]", lines[-1]), lines[-1]
    progress.advanced(("elsewhere", 0), 5)  # a key the study does not have changes nothing
    assert progress.share_done() == pytest.approx((RUN_COST["trpo"] * 150 + RUN_COST["a2c"] * 100 + 50) / total)
    progress.close()


def test_time_left_is_unknown_until_two_percent_and_leaves_out_kept_runs() -> None:
    lines: list[str] = []
    runs = {("a", seed): ("dqn", 1000) for seed in range(3)}
    progress = StudyProgress("demo", runs, kept=1, workers=4, stream=io.StringIO(), print_line=lines.append)
    assert lines == ["demo: 2 runs to train, 1 kept from an earlier call, 2 at a time"]
    progress.finished(("a", 0), "kept", kept=True)
    assert progress.seconds_left() is None and lines[-1].endswith("time left not known yet]")
    progress.advanced(("a", 1), 59)  # 59 of 3,000 steps: under 2 % of the work
    assert progress.seconds_left() is None
    progress.advanced(("a", 1), 500)
    progress.start -= 10.0  # as if 10 s had passed: 500 steps in 10 s, 1,500 to go -> 30 s
    assert progress.seconds_left() == pytest.approx(30.0, abs=0.1)


def test_a_terminal_gets_a_bar_and_the_lines_above_it() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    lines: list[str] = []
    progress = StudyProgress("demo", {("a", 0): ("dqn", 10)}, 0, 1, stream=screen, print_line=lines.append)
    progress.advanced(("a", 0), 5)
    assert lines == []  # the lines go above the bar (tqdm.write), not through print_line
    assert re.search(r"demo +50%\|.*\| 0/1 runs, 0:00 elapsed", screen.getvalue())
    progress.close()


def test_workers_report_their_steps_to_the_parent_while_they_train(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yml"
    path.write_text(TINY)
    plan = plans.plan_experiment(load_experiment(str(path)), 2, tmp_path / "out", report=lambda line: None)
    lines: list[str] = []
    runs = {key: (spec.algo, spec.timesteps) for key, spec in plan.specs.items()}
    progress = Recorded("tiny", runs, 0, 2, stream=io.StringIO(), print_line=lines.append)
    outcomes = {}
    execution.run_in_pool(2, list(plan.specs.items()), outcomes.__setitem__, progress)
    assert set(outcomes) == set(plan.specs) and all("history" in outcome for outcome in outcomes.values())
    assert {key for key, _ in progress.messages} == set(plan.specs)  # every run, from its worker process
    assert all(0 < steps <= 320 for _, steps in progress.messages)


def test_the_study_prints_a_start_line_then_runs_with_times(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yml"
    path.write_text(TINY)
    lines: list[str] = []
    plan = plans.plan_experiment(load_experiment(str(path)), 1, tmp_path / "out", report=lines.append)
    plans.run_plan(plan, lines.append, workers=1, show_progress=True)
    assert lines[0] == "tiny: 2 runs to train, one at a time"
    assert [line.split(":")[0] for line in lines[1:]] == ["[1/2] tiny a2c seed 0", "[2/2] tiny dqn seed 0"]
    assert re.search(r"\[1/2 runs, 0:\d\d elapsed, (about \d+:\d\d left|time left not known yet)\]$", lines[1])
    assert lines[2].endswith("[2/2 runs, " + lines[2].split("[2/2 runs, ")[1]) and "about 0:00 left" in lines[2]
