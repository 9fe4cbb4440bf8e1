"""Rules for bad input, each tested by rule (generated inputs, Hypothesis) as well as by case: whatever input breaks
a rule is refused where it enters, with a message that names what the user wrote and what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import call_script, tiny_experiment
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sb3_entropy.study.experiments import check_distinct_names, load_experiment

# ------------------------------------------------------------------------------------------------------------
# Rule: no two experiments of one study write one folder (each writes out/NAME).

STEMS = st.sampled_from(["base", "music", "Base", "base_tuned", "x"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), STEMS), min_size=1, max_size=5, unique=True))
def test_experiments_sharing_a_name_are_refused_naming_both_files(tmp_path: Path, files: list[tuple[str, str]]) -> None:
    experiments = []
    for folder, stem in files:
        path = tmp_path / folder / f"{stem}.yml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(tiny_experiment())
        experiments.append(load_experiment(str(path)))
    stems = [stem for _, stem in files]
    if len(set(stems)) == len(stems):
        check_distinct_names(experiments)  # distinct names: distinct folders, accepted
        return
    with pytest.raises(ValueError, match="share the name") as error:
        check_distinct_names(experiments)
    twice = next(stem for stem in stems if stems.count(stem) > 1)
    first, second = [tmp_path / f / f"{s}.yml" for f, s in files if s == twice][:2]
    assert f"experiment {twice} ({first}) and experiment {twice} ({second}) share the name '{twice}'" in str(error.value)


def test_reproduce_refuses_two_files_of_one_name_before_any_work(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "base.yml").write_text(tiny_experiment())
    out = tmp_path / "out"
    result = call_script("reproduce.py", str(tmp_path / "a/base.yml"), str(tmp_path / "b/base.yml"), "--out", str(out))
    assert result.returncode == 2
    assert (
        f"experiment base ({tmp_path / 'a/base.yml'}) and experiment base ({tmp_path / 'b/base.yml'}) share the name "
        "'base': both would write the output folder base/, the second over the first; rename one of the files"
    ) in result.stderr
    assert not out.exists()  # refused before anything was written
