"""A script that starts a study at its top level, outside ``if __name__ == "__main__":``, is refused with one clear
message before any worker starts (spawned workers run the script again: Python refuses, and the pool would start
new workers forever)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import tiny_experiment

from sb3_entropy.study.execution import _inside_main_guard

TINY = tiny_experiment(steps=64)

STUDY = """\
from pathlib import Path
from sb3_entropy.study import load_experiment, run_experiment

def study():
    here = Path(__file__).parent
    return run_experiment(load_experiment(str(here / "tiny.yml")), 1, here / "out", workers=2)
"""


def run_python(script: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=script.parent)


@pytest.mark.parametrize(
    ("body", "line"),
    [("study()\n", 7), ("if True:\n    study()\n", 8), ("if __name__ == 'builtins':\n    pass\nstudy()\n", 9)],
)
def test_an_unguarded_study_is_refused_once_naming_the_line(tmp_path: Path, body: str, line: int) -> None:
    (tmp_path / "tiny.yml").write_text(TINY)
    script = tmp_path / "my_study.py"
    script.write_text(STUDY + body)
    result = run_python(script)
    assert result.returncode == 1
    message = (
        f"RuntimeError: {script}, line {line}: a study runs its runs in worker processes, each of which runs this "
        'script again; put the code that starts it under `if __name__ == "__main__":` (or pass workers=1)'
    )
    assert result.stderr.strip().splitlines()[-1] == message
    assert result.stderr.count("Traceback") == 1  # one message, no worker started
    assert not (tmp_path / "out" / "tiny" / "runs").exists() or not any((tmp_path / "out" / "tiny" / "runs").iterdir())


def test_a_guarded_study_runs_in_workers(tmp_path: Path) -> None:
    (tmp_path / "tiny.yml").write_text(TINY)
    script = tmp_path / "my_study.py"
    script.write_text(STUDY + 'if __name__ == "__main__":\n    result = study()\n    print(len(result.histories))\n')
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "2"  # a2c and dqn, one seed each


def test_inside_main_guard_reads_the_block_of_the_line() -> None:
    source = textwrap.dedent(
        """\
        import sys
        if __name__ == "__main__":
            first()
            if x:
                second()
        third()
        if "__main__" == __name__:
            fourth()
        else:
            fifth()
        """
    )
    tree = ast.parse(source)
    assert [line for line in range(1, 11) if _inside_main_guard(tree, line)] == [3, 4, 5, 8]
