"""Rules for bad input, each tested by rule (generated inputs, Hypothesis) as well as by case: whatever input breaks
a rule is refused where it enters, with a message that names what the user wrote and what is valid."""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT as PROJECT
from conftest import call_script, tiny_experiment
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_report import made_result

from personalization_gym.envs.ratings import RatingsEnv, ReadReport
from personalization_gym.lowrank import FitReport
from personalization_gym.rating_files import read_ratings
from sb3_entropy.study.cli.parsing import Distinct, parse_hp
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
    second_at = next(k for k, stem in enumerate(stems) if stem in stems[:k])  # the first name met again
    twice = stems[second_at]
    first = next(tmp_path / f / f"{s}.yml" for f, s in files if s == twice)
    second = tmp_path / files[second_at][0] / f"{twice}.yml"
    assert f"experiment {twice} ({first}) and experiment {twice} ({second}) share the name '{twice}'" in str(
        error.value
    )


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


# ------------------------------------------------------------------------------------------------------------
# Rule: a list flag names each value once; a key=value flag gives each key once.


def _tool_parsers() -> dict[str, argparse.ArgumentParser]:
    from sb3_entropy.study.cli import reproduce, train, tune

    return {"train": train._parser(None), "reproduce": reproduce._parser(None), "tune": tune._parser(None)}


def test_every_list_flag_of_the_tool_refuses_a_repeated_value() -> None:
    """By rule, not by flag: every flag that takes several values takes the Distinct action (a new flag too)."""
    list_flags = [
        (command, action.option_strings or [action.dest])
        for command, parser in _tool_parsers().items()
        for action in parser._actions
        if action.nargs == "+"
    ]
    assert len(list_flags) >= 8
    for command, names in list_flags:
        action = next(a for a in _tool_parsers()[command]._actions if (a.option_strings or [a.dest]) == names)
        assert isinstance(action, Distinct), f"{command} {names[0]} takes several values without refusing repeats"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=2, max_size=6))
def test_repeated_seeds_are_refused_by_every_command(seeds: list[int]) -> None:
    repeats = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    for command, head in (("train", ["Personalization/Music-v0"]), ("tune", ["music"])):
        parser = _tool_parsers()[command]
        argv = [*head, "--seeds", *map(str, seeds)]
        if not repeats:
            assert parser.parse_args(argv).seeds == seeds
            continue
        errors = io.StringIO()
        with pytest.raises(SystemExit), contextlib.redirect_stderr(errors):
            parser.parse_args(argv)
        assert f"--seeds names {repeats} more than once: give each once" in errors.getvalue()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["gamma", "n_steps", "lr"]), st.integers(0, 9)), min_size=1, max_size=5))
def test_a_key_given_twice_is_refused_naming_both(pairs: list[tuple[str, int]]) -> None:
    items = [f"{key}={value}" for key, value in pairs]
    keys = [key for key, _ in pairs]
    twice = next((key for i, key in enumerate(keys) if key in keys[:i]), None)
    if twice is None:
        assert parse_hp(items) == dict(pairs)
        return
    first, second = [item for item in items if item.startswith(f"{twice}=")][:2]
    with pytest.raises(ValueError) as error:
        parse_hp(items, "--env-kwargs")
    assert str(error.value) == f"--env-kwargs gives {twice} twice, {first!r} and {second!r}: give it once"


# ------------------------------------------------------------------------------------------------------------
# Rule: one setting comes from one place: a flag and --hp (or --env-kwargs) both setting it is refused, naming both.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--net-arch", "16", "--hp", "policy_kwargs={net_arch: [8]}"], "--net-arch 16 and --hp policy_kwargs.net_arch [8] both set the network: give one"),
        (["--lr", "0.001", "--hp", "learning_rate=3e-4"], "--lr 0.001 and --hp learning_rate=0.0003 both set learning_rate: give one"),
        (["--ent-coef", "0.1", "--hp", "ent_coef=0.2"], "--ent-coef 0.1 and --hp ent_coef=0.2 both set ent_coef: give one"),
        (["--n-eval", "50", "--env-kwargs", "n_eval=60"], "--n-eval 50 and --env-kwargs n_eval=60 both set n_eval: give one"),
        (["--hp", "gamma=0.9", "--hp", "gamma=0.8"], "--hp gives gamma twice, 'gamma=0.9' and 'gamma=0.8': give it once"),
        (["--algo", "a2c", "a2c"], "--algo names ['a2c'] more than once: give each once"),
        (["--net-arch", "0,16"], "--net-arch must be a list of layer sizes, integers >= 1 such as [256, 256], got [0, 16]"),
    ],
)  # fmt: skip
def test_train_refuses_a_setting_given_in_two_places(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "tb"
    result = call_script("train.py", "Personalization/Behavior-v0", *args, "--tensorboard-log", str(out))
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert not out.exists()


def test_a_flag_replacing_a_value_of_the_hp_file_is_announced(tmp_path: Path) -> None:
    """--hp-file, then the flags: the documented layering, printed where a flag replaces the file's value."""
    hp_file = tmp_path / "hp.yml"
    hp_file.write_text("a2c: {gamma: 0.99, learning_rate: 1.0e-4}\n")
    result = call_script(
        "train.py", "Personalization/Behavior-v0", "--algo", "a2c", "--hp-file", str(hp_file), "--hp", "gamma=0.5",
        "--lr", "0.002", "--timesteps", "64", "--eval-freq", "32", "--env-kwargs", "n_actions=4", "n_eval=50",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"a2c: gamma 0.5 from the flags replaces 0.99 from --hp-file {hp_file}" in result.stdout
    assert f"a2c: learning_rate 0.002 from the flags replaces 0.0001 from --hp-file {hp_file}" in result.stdout


def test_a_network_from_policy_kwargs_alone_is_the_one_trained() -> None:
    from sb3_entropy import paper_agent

    model = paper_agent("a2c", "Personalization/Behavior-v0", policy_kwargs={"net_arch": [8]})
    assert [
        layer.out_features for layer in model.policy.mlp_extractor.policy_net if hasattr(layer, "out_features")
    ] == [8]


# ------------------------------------------------------------------------------------------------------------
# Rule: the library refuses what the command line refuses, in the same words.


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-2, 3), min_size=1, max_size=3))
def test_network_widths_below_1_are_refused_by_the_library_as_by_the_files(widths: list[int]) -> None:
    from sb3_entropy import paper_agent

    if min(widths) >= 1:
        return  # valid widths build (tested by every training test)
    message = f"net_arch must be a list of layer sizes, integers >= 1 such as [256, 256], got {widths!r}"
    with pytest.raises(ValueError) as error:
        paper_agent("ppo", "Personalization/Behavior-v0", net_arch=widths)
    assert str(error.value) == message
    with pytest.raises(ValueError) as error:
        paper_agent("ppo", "Personalization/Behavior-v0", policy_kwargs={"net_arch": widths})
    assert str(error.value) == message.replace("net_arch must", "policy_kwargs['net_arch'] must")


def test_the_library_refuses_a_network_given_twice_and_negative_seeds() -> None:
    from sb3_entropy import paper_agent

    with pytest.raises(ValueError) as error:
        paper_agent("dqn", "Personalization/Behavior-v0", net_arch=[16], policy_kwargs={"net_arch": [8]})
    assert str(error.value) == "net_arch=[16] and policy_kwargs['net_arch']=[8] both set the network: give one"
    for seed, shown in ((-1, "-1"), (1.5, "1.5 (float)"), ("0", "'0' (str)")):
        with pytest.raises(ValueError) as error:
            paper_agent("ppo", "Personalization/Behavior-v0", seed=seed)
        assert str(error.value) == f"seed must be an integer >= 0, got {shown}"


def test_an_experiment_file_giving_the_network_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.yml"
    path.write_text(tiny_experiment().replace("a2c: {learning_rate: 1.0e-3}", "a2c: {policy_kwargs: {net_arch: [8]}}"))
    with pytest.raises(ValueError) as error:
        load_experiment(str(path))
    assert str(error.value) == (
        f"experiment twice ({path}): agents.a2c: policy_kwargs.net_arch [8] and net_arch [16] both set the network: "
        "give net_arch once, for every agent"
    )


# ------------------------------------------------------------------------------------------------------------
# Rule: a rating file is read as it was written, or refused naming the file and line; what was read is stated.

FAULTS = ("two_ways", "empty", "huge", "outlier")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1), st.integers(15, 40), st.sets(st.sampled_from(FAULTS)))
def test_generated_rating_files_are_refused_by_name_or_read_as_stated(
    tmp_path: Path, seed: int, n: int, faults: set[str]
) -> None:
    rng = np.random.default_rng(seed)
    pairs = rng.choice(6 * 9, size=n, replace=False)  # distinct (user, item) pairs
    users, items = (pairs // 9 + 1).tolist(), (pairs % 9 + 1).tolist()
    ratings = rng.integers(1, 6, n).astype(float).tolist()
    user_text = [str(user) for user in users]
    row = int(rng.integers(n))
    if "two_ways" in faults:  # user 7 (rated nowhere else) written as 7.0 in the row, as 7 in the next
        other = (row + 1) % n
        users[other] = users[row] = 7
        user_text[other], user_text[row] = "7", "7.0"
    if "empty" in faults:
        user_text[row] = ""
    if "huge" in faults:
        ratings[row] = 881250949.0  # a timestamp in the rating column
    if "outlier" in faults:
        ratings[(row + 2) % n] = 87.0
    path = tmp_path / f"ratings_{seed}_{n}.csv"
    path.write_text("user,item,rating\n" + "".join(
        f"{u},{i},{r:g}\n" for u, i, r in zip(user_text, items, ratings, strict=True)
    ))  # fmt: skip
    if "empty" in faults:
        message = f"ratings: {path}, line {row + 2}: empty user id (1 line(s) have one); every rating needs a user"
    elif "two_ways" in faults:
        first, second = sorted([row, (row + 1) % n])
        written = {row: f"{users[row]}.0", (row + 1) % n: str(users[row])}
        message = (
            f"ratings: {path}: user ids {written[first]!r} (line {first + 2}) and {written[second]!r} (line "
            f"{second + 2}) are one number written two ways, so they would be two users; write each id one way"
        )
    elif "huge" in faults:
        message = (
            f"ratings: 1 rating(s) of magnitude 1e6 or more, the first {881250949.0:g} (rating {row + 1:,} in file"
        )
    else:
        message = None
    if message is not None:
        with pytest.raises(ValueError) as error:
            RatingsEnv(str(path), rank=1, n_iter=2)
        assert str(error.value).startswith(message)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = RatingsEnv(str(path), rank=1, n_iter=2)
    report = task.read_report
    assert (report.n_ratings, report.n_users, report.n_items) == (n, len(set(users)), len(set(items)))
    assert report.rating_range == (min(ratings), max(ratings))
    assert report.user_range == (min(users), max(users)) and report.item_range == (min(items), max(items))
    assert str(report).startswith(
        f"read {n} ratings of {len(set(users))} users (ids {min(users)} to {max(users)}) and {len(set(items))} items"
    )
    flagged = [str(w.message) for w in caught if "far outside the bulk" in str(w.message)]
    if "outlier" in faults:  # the bulk is [1, 5]: 87 is far outside it, and said so
        assert report.n_outliers == 1 and report.outliers == (87.0,)
        assert flagged == [f"ratings: {report.flag}"] and "87" in report.flag and report.flag in str(report)
    else:
        assert report.n_outliers == 0 and not flagged


def test_columns_for_a_headerless_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text("1,2,3\n2,3,4\n")
    with pytest.raises(ValueError) as error:
        read_ratings(path, columns=("userId", "movieId", "rating"))
    assert str(error.value) == (
        f"columns=('userId', 'movieId', 'rating') names the columns of a header, but {path} has none (its first line "
        "is a rating): its fields are read in order as user, item, rating; leave columns out, or add a header"
    )


def test_the_bulk_rule_at_its_edge() -> None:
    """Far outside means farther from the bulk than the scale's size (the largest of its width and its ends'
    magnitudes), or negative where the bulk is not: with the bulk [1, 5], 0 and 10 are inside, -0.5 and 10.5 outside;
    with [3, 4] (ratings concentrated on two stars), 1, 5 and 8 inside, 8.5 outside. One rating of 201 is set aside at
    each end, so the edge value does not move the bulk."""
    for stars, (low, high), edges in (
        ([1.0, 2, 3, 4, 5], (1.0, 5.0), ((0.0, 0), (10.0, 0), (-0.5, 1), (10.5, 1), (-3.0, 1), (87.0, 1))),
        ([3.0, 4.0], (3.0, 4.0), ((1.0, 0), (5.0, 0), (8.0, 0), (8.5, 1), (-0.5, 1))),
    ):
        for edge, flagged in edges:
            values = np.append(np.resize(stars, 200), edge)
            report = ReadReport.of(values, np.arange(3), np.arange(4))
            assert report.bulk == (low, high) and report.n_outliers == flagged, (stars, edge)


# ------------------------------------------------------------------------------------------------------------
# Rule: a task has something to learn: some action is better than another for some user, and its sums are finite.


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 6), st.integers(0, 3), st.booleans())
def test_a_reward_table_without_a_better_action_is_refused(seed: int, k: int, varied_rows: int, huge: bool) -> None:
    from personalization_gym import TabularEnv

    rng = np.random.default_rng(seed)
    rewards = np.repeat(rng.random((12, 1)), k, axis=1)  # every row one value
    rows = rng.choice(12, size=varied_rows, replace=False)
    rewards[rows, 0] += 1.0  # these users prefer action 0
    if huge:
        rewards[0, :] = 1e308  # finite, but a sum over users overflows
    features = rng.random((12, 3))
    if huge:
        with pytest.raises(ValueError, match=r"^rewards: their sum overflows \(the largest magnitude is 1e\+308\)"):
            TabularEnv(features, rewards)
    elif varied_rows == 0:
        with pytest.raises(ValueError) as error:
            TabularEnv(features, rewards)
        assert str(error.value) == (
            "rewards: no action is better than another for any user (each row holds one value): the task would have "
            "nothing to learn"
        )
    else:
        assert TabularEnv(features, rewards).rewards.shape == (12, k)


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(0, 40), min_size=2, max_size=6), st.booleans())
def test_labels_that_are_not_0_to_k_minus_1_are_refused_with_how_to_map_them(values: set[int], given_k: bool) -> None:
    from personalization_gym import ClassificationEnv

    labels = np.array(sorted(values) * 3)
    features = np.random.default_rng(0).random((len(labels), 2))
    present = sorted(values)
    if given_k:  # n_classes given: classes without examples are the user's choice
        assert ClassificationEnv(features, labels, n_classes=max(present) + 1).n_classes == max(present) + 1
    elif present == list(range(len(present))):
        assert ClassificationEnv(features, labels).n_classes == len(present)
    else:
        with pytest.raises(ValueError) as error:
            ClassificationEnv(features, labels)
        shown = present if len(present) <= 6 else None
        assert str(error.value).startswith(f"labels take {len(present)} values, {shown}, not 0..{max(present)}: ")
        assert f"would make {max(present) + 1 - len(present)} actions of classes without an example" in str(error.value)
        assert "np.unique(labels, return_inverse=True)[1]" in str(error.value)


def test_ratings_all_equal_are_refused() -> None:
    users, items = np.array([1, 1, 2, 2]), np.array([1, 2, 1, 2])
    with pytest.raises(ValueError) as error:
        RatingsEnv((users, items, np.full(4, 4.0)), rank=1)
    assert str(error.value) == (
        "ratings: every rating is 4: no item is better than another for any user, so the task would have nothing to "
        "learn"
    )


@settings(max_examples=60, deadline=None)
@given(st.floats(0.1, 5.0), st.sampled_from([-1e-9, 0.0, 1e-9]), st.integers(1, 20), st.integers(1, 10**6))
def test_a_fit_no_better_than_the_mean_rating_is_flagged_exactly_at_the_mean(
    mean_rmse: float, offset: float, rank: int, n_ratings: int
) -> None:
    """The fit's flag turns where the held-out RMSE reaches the mean rating's: below it, no flag."""
    report = FitReport(rank, 0.1, n_ratings, 10, mean_rmse * (1 + offset), mean_rmse, 0.5)
    if offset < 0:
        assert report.flag == "" and str(report).endswith(f"training RMSE 0.5000 on {n_ratings:,})")
    else:
        assert report.flag.startswith(f"the rank-{rank} model predicts the held-out ratings no better than the mean")
        assert f"too few ratings for rank {rank} ({n_ratings:,} fitted)" in report.flag
        assert str(report).endswith(f"; {report.flag}")


def test_too_few_ratings_for_the_rank_are_flagged_and_a_planted_structure_is_not() -> None:
    """The issue's case, two ratings at rank 1, is flagged (the held-out rating's user and item were never fitted);
    so is a table of pure noise; ratings of a planted rank-2 table with noise are not."""
    rng = np.random.default_rng(0)
    two = (np.array([0, 1]), np.array([0, 1]), np.array([1.0, 5.0]))
    pairs = rng.choice(60 * 40, size=1500, replace=False)
    users, items = pairs // 40, pairs % 40
    noise = (users, items, rng.integers(1, 6, len(pairs)).astype(float))
    taste = rng.normal(size=(60, 2)) @ rng.normal(size=(2, 40))
    planted = (users, items, 3 + taste[users, items] + 0.1 * rng.normal(size=len(pairs)))
    for ratings, rank, flagged in ((two, 1, True), (noise, 8, True), (planted, 2, False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            task = RatingsEnv(ratings, rank=rank)
        warned = [str(w.message) for w in caught if "no better than the mean" in str(w.message)]
        assert warned == ([f"ratings: {task.fit_report.flag}"] if flagged else [])
        assert (task.fit_report.held_out_rmse >= task.fit_report.mean_rmse) is flagged


# ------------------------------------------------------------------------------------------------------------
# Rule: the callback evaluates the model on its own task, unless told that another is meant.


@pytest.mark.parametrize("given_as", ["task", "id", "vec"])
def test_the_callback_refuses_another_tasks_evaluation_set(given_as: str) -> None:
    import gymnasium as gym
    from stable_baselines3 import PPO

    from sb3_entropy import EntropyCallback
    from sb3_entropy.vec_env import make_vec

    model = PPO("MlpPolicy", make_vec("Personalization/Music-v0", 4, seed=0), n_steps=8, batch_size=32, device="cpu")
    same_shapes = {"n_actions": 50, "state_dim": 20, "n_eval": 100}  # Behavior-v0 shaped as Music-v0
    other = {
        "task": lambda: gym.make("Personalization/Behavior-v0", **same_shapes),
        "id": lambda: "Personalization/Behavior-v0",
        "vec": lambda: make_vec("Personalization/Behavior-v0", 2, seed=0, **same_shapes),
    }[given_as]
    kwargs = {"eval_env_kwargs": same_shapes} if given_as == "id" else {}
    with pytest.raises(ValueError) as error:
        model.learn(32, callback=EntropyCallback(eval_env=other(), **kwargs))
    assert str(error.value) == (
        "eval_env is Personalization/Behavior-v0 but the model trains on Personalization/Music-v0: every metric would "
        "be of another task's users and rewards. Evaluate on the model's task, or pass other_task=True if that is meant"
    )
    meant = EntropyCallback(eval_env=other(), other_task=True, **kwargs)
    model.learn(32, callback=meant)
    assert [row["timesteps"] for row in meant.history] == [0, 32]
    own = EntropyCallback(eval_env="Personalization/Music-v0", eval_env_kwargs={"n_eval": 100})
    model.learn(32, callback=own)  # its own task, made apart from the training env: accepted
    assert len(own.history) == 2


def test_the_callback_refuses_an_evaluation_set_of_another_number_of_actions() -> None:
    from stable_baselines3 import PPO

    from sb3_entropy import EntropyCallback
    from sb3_entropy.vec_env import make_vec

    trained_on = make_vec("Personalization/Behavior-v0", 4, seed=0, n_actions=50, state_dim=8)
    model = PPO("MlpPolicy", trained_on, n_steps=8, batch_size=32, device="cpu")
    smaller = {"n_actions": 30, "state_dim": 8, "n_eval": 50}
    callback = EntropyCallback(eval_env="Personalization/Behavior-v0", eval_env_kwargs=smaller)
    with pytest.raises(ValueError) as error:
        model.learn(32, callback=callback)
    assert str(error.value) == (
        "the evaluation set's task Personalization/Behavior-v0 has 30 actions and the model 50: evaluate the model on its own task"
    )


# ------------------------------------------------------------------------------------------------------------
# Every message names what the user wrote (the file and line, the argument) and what is valid.


def test_unclear_cases_now_name_the_file_line_or_argument(tmp_path: Path) -> None:
    import gzip

    rows = [(user, item, (user + item) % 5 + 1) for user in range(1, 11) for item in range(1, 6)]
    plain = tmp_path / "r.csv"
    plain.write_text("".join(f"{u},{i},{r}\n" for u, i, r in rows))
    cases = []
    cases.append(((str(plain),), {"users": [str(u) for u in range(1, 11)]},
                  "users= holds text (['1', '2', '3'], ...) but the ratings' user ids are integers ([1, 1, 1], ...): "
                  "give users= as the ratings write them"))  # fmt: skip
    nan = tmp_path / "nan.csv"
    nan.write_text("".join(f"{u},{i},{r}\n" for u, i, r in rows[:6]) + "7,1,nan\n")
    cases.append(((str(nan),), {}, f"ratings: {nan}, line 7: rating 'nan' is not a finite number (1 line(s) have one)"))
    packed = tmp_path / "r.csv.gz"
    with gzip.open(packed, "wt") as stream:
        stream.write(plain.read_text())
    cases.append(((str(packed),), {}, f"ratings: {packed} is a gzip file, not text: decompress it first, and give "
                                      "the file inside"))  # fmt: skip
    colons = tmp_path / "ratings.dat"
    colons.write_text("".join(f"{u}:{i}:{r}:0\n" for u, i, r in rows))
    cases.append(((str(colons),), {}, "Its first line looks like a rating with fields separated by ':', which no "
                                      "format uses: write it comma-separated, or as MovieLens-1M's ratings.dat with '::'"))  # fmt: skip
    for args, kwargs, message in cases:
        with pytest.raises(ValueError) as error:
            RatingsEnv(*args, rank=1, **kwargs)
        assert message in str(error.value), str(error.value)


# ------------------------------------------------------------------------------------------------------------
# The rules that decide a verdict or a flag, tested on both sides of their boundaries.


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.floats(0.5, 3.0), min_size=6, max_size=6),
    st.sampled_from(["high", "low"]),
    st.sampled_from([-1e-9, 1e-9]),
)
def test_the_verdict_turns_exactly_where_the_interval_crosses_0(
    tmp_path: Path, entropies: list[float], end: str, offset: float
) -> None:
    """The paper's finding is reproduced exactly when the interval of (policy optimization - Q-learning) H(p) has its
    upper end below 0, contradicted exactly when its lower end is above 0: the data are shifted so that one end lies
    1e-9 on either side of 0."""
    from sb3_entropy.study.analysis import contrast_interval, entropy_gap

    po, ql = np.array(entropies[:3]), np.array(entropies[3:])
    before = contrast_interval([po], [ql])
    ql = ql + (getattr(before, end) - offset)  # the chosen end now at about `offset`
    rewards = [0.84, 0.85, 0.86]
    result = made_result(
        tmp_path, {"a2c": list(zip(rewards, po, strict=True)), "dqn": list(zip(rewards, ql, strict=True))}
    )
    gap = entropy_gap(result, {"a2c": True, "dqn": True})
    contrast = gap.contrast
    assert abs(getattr(contrast, end) - offset) < 1e-6  # the boundary is what is tested
    expected = (
        "reproduced" if contrast.high < 0 else "contradicted" if contrast.low > 0 else "not established with 3 seeds"
    )
    assert gap.verdict == expected


def test_the_verdict_at_an_interval_ending_exactly_at_0_and_at_one_and_two_seeds(tmp_path: Path) -> None:
    """Equal entropies in both families give the interval [0, 0]: it includes 0 (neither end is strictly past it).
    One seed gives no interval; two give one."""
    from sb3_entropy.study.analysis import entropy_gap

    both = {"a2c": True, "dqn": True}
    same = [(0.85, 1.0)] * 3
    gap = entropy_gap(made_result(tmp_path, {"a2c": same, "dqn": same}), both)
    assert (gap.contrast.estimate, gap.contrast.low, gap.contrast.high) == (0.0, 0.0, 0.0)
    assert gap.outcome == "not established with 3 seeds: the interval includes 0"
    one = entropy_gap(made_result(tmp_path, {"a2c": [(0.85, 1.0)], "dqn": [(0.85, 2.0)]}), both)
    assert one.outcome == "not established with 1 seed: one seed gives no interval (run more seeds)"
    assert one.contrast.n == 1 and one.members == {"policy optimization": ["a2c"], "Q-learning": ["dqn"]}
    two = entropy_gap(made_result(tmp_path, {"a2c": [(0.85, 1.0), (0.86, 1.1)], "dqn": [(0.85, 2.0), (0.86, 2.1)]}),
                      both)  # fmt: skip
    assert two.contrast.n == 2 and two.outcome == "reproduced: the interval lies below 0"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries({agent: st.sampled_from([True, False, None]) for agent in ("a2c", "ppo", "dqn", "qrdqn")}))
@example({"a2c": None, "ppo": True, "dqn": None, "qrdqn": False})  # a failed agent before a learned one
@example({"a2c": False, "ppo": None, "dqn": None, "qrdqn": None})
def test_a_family_without_a_learned_agent_is_named(tmp_path: Path, learned: dict[str, bool | None]) -> None:
    """Without a learned agent in a family the verdict names the family missing (both when both are), says "not
    established" when an agent of it was left out as not learned and "not applicable" when none finished; a failed
    agent (None) is skipped, the agents after it still judged."""
    from sb3_entropy.study.analysis import entropy_gap

    runs = [(0.85, 1.0), (0.86, 1.2), (0.87, 1.1)]
    gap = entropy_gap(made_result(tmp_path, dict.fromkeys(("a2c", "ppo", "dqn", "qrdqn"), runs)), learned)
    po = [agent for agent in ("a2c", "ppo") if learned[agent]]
    ql = [agent for agent in ("dqn", "qrdqn") if learned[agent]]
    left_out = [agent for agent in ("a2c", "ppo", "dqn", "qrdqn") if learned[agent] is False]  # the file's order
    assert gap.members == {"policy optimization": po, "Q-learning": ql} and gap.left_out == left_out
    if po and ql:
        assert gap.contrast is not None
        return
    missing = "Q-learning" if po else "policy-optimization" if ql else "policy-optimization or Q-learning"
    assert gap.outcome == (
        f"not established: no {missing} agent has been shown to learn"
        if left_out
        else f"not applicable: it needs finished runs of a {missing} agent"
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(0.2, 0.8), min_size=3, max_size=3, unique=True), st.sampled_from([-1e-9, 0.0, 1e-9]))
def test_the_not_above_random_flag_turns_exactly_at_the_random_reward(
    tmp_path: Path, rewards: list[float], offset: float
) -> None:
    """An agent is flagged (not above random) exactly when its reward interval's lower end is at or below the random
    policy's reward: the random reward is put at the lower end, 1e-9 below it, and 1e-9 above it."""
    from sb3_entropy.metrics import EXPECTED_REWARD
    from sb3_entropy.study.analysis import summarize

    result = made_result(tmp_path, {"ppo": [(reward, 1.0) for reward in rewards]})
    low = summarize(result, "ppo")[EXPECTED_REWARD].low
    result.baselines["random"] = low + offset
    assert summarize(result, "ppo").near_random == (offset >= 0)


# ------------------------------------------------------------------------------------------------------------
# Rule: an experiment file with any fault, or several, is refused naming the file and a fault's key.

EXPERIMENT_FAULTS = {  # name: (what it does to a valid file, what the message names)
    "key twice": (lambda text: "steps: 64\n" + text, "found the key 'steps' a second time"),
    "agent twice": (
        lambda text: text.replace("agents:\n", "agents:\n  a2c: {learning_rate: 1.0e-4}\n"),
        "found the key 'a2c' a second time",
    ),
    "width 0": (lambda text: text.replace("net_arch: [16]", "net_arch: [16, 0]"), "net_arch must be a list"),
    "unknown key": (lambda text: text + "stepz: 5\n", "unknown key(s) ['stepz']"),
    "text count": (lambda text: text.replace("eval_freq: 32", "eval_freq: soon"), "eval_freq must be an integer"),
    "network twice": (
        lambda text: text.replace("a2c: {learning_rate: 1.0e-3}", "a2c: {policy_kwargs: {net_arch: [8]}}"),
        "policy_kwargs.net_arch [8] and net_arch",
    ),
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(sorted(EXPERIMENT_FAULTS)), min_size=1, max_size=3, unique=True))
def test_generated_faulty_experiment_files_are_refused_naming_the_file(tmp_path: Path, faults: list[str]) -> None:
    text = tiny_experiment()
    for fault in faults:
        text = EXPERIMENT_FAULTS[fault][0](text)
    path = tmp_path / f"faulty_{'_'.join(fault.replace(' ', '-') for fault in faults)}.yml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_experiment(str(path))
    message = str(error.value)
    assert message.startswith(f"experiment {path.stem} ({path}): ")
    assert any(EXPERIMENT_FAULTS[fault][1] in message for fault in faults), message


def test_a_second_call_does_not_overwrite_another_files_experiment_of_the_same_name(tmp_path: Path) -> None:
    """Two calls, one --out, two files named base.yml: the second is refused before any work, naming both; the
    same file again (a rerun, or --resume) is its own folder's experiment and runs."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "base.yml").write_text(tiny_experiment(steps=32))
    out = tmp_path / "out"
    common = ("--seeds", "2", "--workers", "1", "--out", str(out))
    first = call_script("reproduce.py", str(tmp_path / "a/base.yml"), *common)
    assert first.returncode == 0, first.stderr
    assert (out / "base" / "experiment_file.txt").read_text() == f"{tmp_path / 'a/base.yml'}\n"
    runs = {path.name: path.read_bytes() for path in (out / "base" / "runs").iterdir()}
    second = call_script("reproduce.py", str(tmp_path / "b/base.yml"), *common)
    assert second.returncode == 2
    assert (
        f"{out / 'base'} holds the runs of {tmp_path / 'a/base.yml'}, and experiment base is now "
        f"{tmp_path / 'b/base.yml'}: it would overwrite them. Give another --out, or rename the file"
    ) in second.stderr
    assert {path.name: path.read_bytes() for path in (out / "base" / "runs").iterdir()} == runs
    again = call_script("reproduce.py", str(tmp_path / "a/base.yml"), *common, "--resume")
    assert again.returncode == 0 and again.stdout.count("resumed from an earlier run") == 4


def test_the_read_report_gives_the_id_range_of_ids_declared_in_any_order() -> None:
    users = np.repeat([3, 1, 2], 4)
    items = np.tile([20, 10, 40, 30], 3)
    stars = np.arange(12) % 5 + 1.0
    report = RatingsEnv((users, items, stars), users=[3, 1, 2], items=[40, 10, 30, 20], rank=1).read_report
    assert (report.user_range, report.item_range) == ((1, 3), (10, 40))
    assert str(report) == "read 12 ratings of 3 users (ids 1 to 3) and 4 items (ids 10 to 40), ratings 1 to 5"


def tuned_file(lr: float) -> str:
    """A tuned file for tiny_experiment's experiment "base" (as tune writes one): A2C's learning rate chosen."""
    agent = f"{{chosen: {{learning_rate: {lr!r}}}, trials: 2, pruned: 0, failed: 0, steps: 32, seeds: [9]}}"
    experiment = tiny_experiment(steps=32).replace("a2c: {learning_rate: 1.0e-3}", f"a2c: {{learning_rate: {lr!r}}}")
    return experiment + f"tuning:\n  experiment: base\n  agents:\n    a2c: {agent}\n"


def test_one_experiment_tuned_by_two_files_does_not_share_a_folder(tmp_path: Path) -> None:
    """base_tuned from one tuned file, then from another, with one --out: the second is refused before any work,
    naming both tuned files; the same tuned file again runs."""
    (tmp_path / "base.yml").write_text(tiny_experiment(steps=32))
    for folder, lr in (("t1", 1e-3), ("t2", 3e-3)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "tuned.yml").write_text(tuned_file(lr))
    out = tmp_path / "out"
    common = (str(tmp_path / "base.yml"), "--seeds", "2", "--workers", "1", "--agents", "a2c", "--out", str(out))
    first = call_script("reproduce.py", *common, "--hyperparams", str(tmp_path / "t1/tuned.yml"))
    assert first.returncode == 0, first.stderr
    source = f"{tmp_path / 'base.yml'} with the hyperparameters of {tmp_path / 't1/tuned.yml'}"
    assert (out / "base_tuned" / "experiment_file.txt").read_text() == source + "\n"
    second = call_script("reproduce.py", *common, "--hyperparams", str(tmp_path / "t2/tuned.yml"))
    assert second.returncode == 2
    assert (
        f"{out / 'base_tuned'} holds the runs of {source}, and experiment base_tuned is now {tmp_path / 'base.yml'} "
        f"with the hyperparameters of {tmp_path / 't2/tuned.yml'}: it would overwrite them"
    ) in second.stderr
    again = call_script("reproduce.py", *common, "--hyperparams", str(tmp_path / "t1/tuned.yml"), "--resume")
    assert again.returncode == 0 and again.stdout.count("resumed from an earlier run") == 2


# ------------------------------------------------------------------------------------------------------------
# Rule: every message names what the user wrote: the value (a placeholder), or the argument, keyword or flag.

LIBRARY = ("personalization_gym", "sb3_entropy")


def _raised_messages() -> list[tuple[str, int, str, set[str]]]:
    """Each ValueError/TypeError the library raises with a message: its file, line, text and the names the user
    could have written there (the enclosing functions' parameters, the enclosing classes' fields and arguments)."""
    found: list[tuple[str, int, str, set[str]]] = []

    def visit(node: ast.AST, path: Path, names: set[str], classes: dict[str, set[str]]) -> None:
        for child in ast.iter_child_nodes(node):
            inner = names
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = names | {a.arg for a in (*child.args.args, *child.args.kwonlyargs)}
            elif isinstance(child, ast.ClassDef):
                inner = names | classes.get(child.name, set())
            elif (
                isinstance(child, ast.Raise)
                and isinstance(child.exc, ast.Call)
                and getattr(child.exc.func, "id", "") in ("ValueError", "TypeError")
                and child.exc.args
            ):
                found.append((str(path.relative_to(PROJECT)), child.lineno, ast.unparse(child.exc.args[0]), names))
            visit(child, path, inner, classes)

    for package in LIBRARY:
        for path in sorted((PROJECT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            classes: dict[str, set[str]] = {}
            for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
                for item in cls.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                        classes.setdefault(cls.name, set()).update(
                            a.arg for a in (*item.args.args, *item.args.kwonlyargs)
                        )
                    elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        classes.setdefault(cls.name, set()).add(item.target.id)
            visit(tree, path, set(), classes)
    return found


def test_every_message_of_the_library_names_what_the_user_wrote() -> None:
    """A message with no value of the user's in it (no placeholder) names an argument of the function or class that
    raises it, a keyword (``tensorboard_log=``) or a flag (``--regularizer``)."""
    messages = _raised_messages()
    assert len(messages) > 200  # the scan reads the library (239 messages when written)
    unnamed = [
        f"{path}:{line}: {text}"
        for path, line, text, names in messages
        if text[0] in "'\""  # a plain string: no value of the user's shown
        and not set(re.findall(r"[A-Za-z_]\w*", text)) & names
        and not re.search(r"--[a-z]|\w=", text)
    ]
    assert unnamed == []
