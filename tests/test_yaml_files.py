"""YAML files: a key written twice is an error naming the file and both lines, everywhere the project reads YAML;
every file that ships reads as PyYAML's safe loader reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_ROOT, call_script, tiny_experiment

from sb3_entropy.study.experiments import load_yaml, read_yaml
from sb3_entropy.study.tuning_files import load_search_space


def test_every_shipped_yaml_file_reads_as_the_safe_loader_reads_it() -> None:
    files = sorted((PROJECT_ROOT / "sb3_entropy").rglob("*.yml"))
    assert len(files) >= 15
    for path in files:
        assert read_yaml(path, str(path)) == yaml.safe_load(path.read_text()), path


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = "agents:\n  a2c: {}\n  dqn: {}\n  a2c: {learning_rate: 0.1}\n"
    with pytest.raises(yaml.YAMLError, match=r"found the key 'a2c' a second time \(first on line 2\)") as caught:
        load_yaml(text)
    assert caught.value.problem_mark.line + 1 == 4
    path = tmp_path / "study.yml"
    path.write_text("seeds: 3\nsteps: 10\nseeds: 5\n")
    with pytest.raises(ValueError) as caught:
        read_yaml(path, f"experiment study ({path})")
    message = str(caught.value)
    assert message.startswith(f'experiment study ({path}): not valid YAML: while constructing a mapping in "{path}"')
    assert "found the key 'seeds' a second time (first on line 1); write each key once" in message
    assert f'in "{path}", line 3, column 1' in message


def test_merge_keys_and_equal_keys_in_different_mappings_are_fine() -> None:
    text = "base: &base {learning_rate: 0.001}\na2c:\n  <<: *base\n  gamma: 0.9\nppo: {learning_rate: 0.002}\n"
    assert load_yaml(text) == yaml.safe_load(text)
    assert load_yaml(text)["a2c"] == {"learning_rate": 0.001, "gamma": 0.9}


def test_the_study_the_search_space_and_hp_files_refuse_a_key_written_twice(tmp_path: Path) -> None:
    experiment = tmp_path / "twice.yml"
    experiment.write_text(tiny_experiment().replace("agents:\n", "agents:\n  a2c: {}\n"))
    result = call_script("reproduce.py", str(experiment), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "found the key 'a2c' a second time (first on line 7); write each key once" in result.stderr
    assert f'in "{experiment}", line 8, column 3' in result.stderr
    assert not (tmp_path / "out").exists()

    hp_file = tmp_path / "hp.yml"
    hp_file.write_text("gamma: 0.9\ngamma: 0.5\n")
    result = call_script("train.py", "Personalization/Behavior-v0", "--hp-file", str(hp_file), "--timesteps", "32")
    assert result.returncode == 2 and "found the key 'gamma' a second time (first on line 1)" in result.stderr

    space = tmp_path / "space.yml"
    space.write_text("a2c:\n  learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\na2c: {}\n")
    with pytest.raises(ValueError, match=r"search space .*found the key 'a2c' a second time \(first on line 1\)"):
        load_search_space(space)
