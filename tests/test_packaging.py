"""The package as a user installs it: a wheel built from the tracked files, checked by twine, installed (not
editable) into a fresh virtual environment, and used from a folder outside the repository with no data path set:
the tool's quick study, a tuning and a re-rendered report, python -m sb3_entropy, and the callback's import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow  # builds a wheel and a virtual environment, and runs the tool in fresh interpreters


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)  # fmt: skip
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the tracked files (a copy: no build/ folder of an earlier build can leak into it)."""
    folder = tmp_path_factory.mktemp("wheel")
    tracked = run("git", "ls-files", cwd=PROJECT_ROOT).splitlines()
    for name in tracked:
        if (PROJECT_ROOT / name).is_file():  # a file deleted in the working tree is not built
            (folder / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, folder / "src" / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", folder / "src", "-w",
        folder / "dist", cwd=folder)  # fmt: skip
    (built,) = (folder / "dist").glob("personalization_gym-*.whl")
    return built


def test_the_wheel_holds_every_file_of_the_packages_and_the_console_script(wheel: Path) -> None:
    tracked = run("git", "ls-files", "personalization_gym", "sb3_entropy", cwd=PROJECT_ROOT).splitlines()
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in tracked if (PROJECT_ROOT / name).is_file() and name not in shipped]
    assert not missing, f"tracked files of the packages missing from the wheel: {missing}"
    assert {"sb3_entropy/experiments/music.yml", "sb3_entropy/experiments/tuned/music.yml",
            "personalization_gym/assets/spotify/LICENSE", "sb3_entropy/study/cli/__init__.py"} <= shipped  # fmt: skip
    (entry_points,) = [name for name in shipped if name.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[console_scripts]\npersonalization-gym = sb3_entropy.__main__:main" in text


def test_twine_accepts_the_metadata(wheel: Path) -> None:
    out = run(sys.executable, "-m", "twine", "check", "--strict", wheel, cwd=wheel.parent)
    assert "PASSED" in out


def test_the_installed_wheel_runs_the_study_from_any_folder(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # the machine's torch, SB3, ... are reused (system site packages); the project itself comes from the wheel
    run(sys.executable, "-m", "venv", "--system-site-packages", venv, cwd=tmp_path)
    python, tool = venv / "bin" / "python", venv / "bin" / "personalization-gym"
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PERSONALIZATION_GYM_DATA", "PYTHONPATH")}

    where = run(python, "-c", "import sb3_entropy, personalization_gym; from sb3_entropy import EntropyCallback; "
                "print(sb3_entropy.__file__); print(personalization_gym.__file__)", cwd=elsewhere, env=env)  # fmt: skip
    assert all(Path(line).is_relative_to(venv) for line in where.split()), where  # not the repository's files

    study = ("music", "--agents", "a2c", "dqn", "--quick", "--seeds", "2", "--steps", "320", "--out", "out")
    printed = run(tool, "reproduce", *study, cwd=elsewhere, env=env)
    assert "music: 4 runs to train" in printed and "## Verdict" in printed
    assert "Q-learning is represented by DQN alone" in (elsewhere / "out" / "report.md").read_text()
    results = (elsewhere / "out" / "music" / "results.csv").read_bytes()
    (elsewhere / "out" / "report.md").unlink()
    run(tool, "report", *study, cwd=elsewhere, env=env)
    assert (elsewhere / "out" / "report.md").is_file() and (
        elsewhere / "out" / "music" / "results.csv"
    ).read_bytes() == results

    tuned = run(tool, "tune", "music", "--agents", "dqn", "--trials", "1", "--steps", "320", "--seeds", "1000",
                "--out", "tuning", cwd=elsewhere, env=env)  # fmt: skip
    assert (elsewhere / "tuning" / "music" / "tuned.yml").is_file() and "dqn" in tuned
    listed = run(python, "-m", "sb3_entropy", "list", "experiments", cwd=elsewhere, env=env)
    assert "music" in listed and "tuned" in listed
