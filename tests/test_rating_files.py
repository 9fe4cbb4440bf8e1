"""Rating files in the formats researchers have (MovieLens-100K's u.data, MovieLens-1M/10M's ratings.dat,
MovieLens-latest's ratings.csv, RecBole's .inter, plain CSV), and MovieLens-v0 on the folder GroupLens unzips to.
Every file here is written by the test, in the layout of the real one (MovieLens may not be redistributed)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import call_script
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import personalization_gym
from personalization_gym import DataNotFoundError, rating_files
from personalization_gym.envs.movielens import MovieLensEnv
from personalization_gym.envs.ratings import RatingsEnv
from personalization_gym.rating_files import DEFAULT_COLUMNS, RATINGS_FORMATS, detect_ratings_format, read_ratings


@pytest.fixture(scope="module")
def table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A small table in MovieLens's shape: integer ids that are not indices, 1-5 stars, timestamps."""
    rng = np.random.default_rng(7)
    pairs = [(u, i) for u in range(14) for i in range(12) if rng.random() < 0.6 or i == u % 12]  # rank 10 fits
    users = np.array([1 + u for u, _ in pairs])
    items = np.array([100 + 3 * i for _, i in pairs])
    stars = rng.integers(1, 6, len(pairs)).astype(np.float64)
    stamps = rng.integers(874_724_710, 893_286_638, len(pairs))
    return users, items, stars, stamps


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    return path


def u_data(table) -> str:  # MovieLens-100K: user \t item \t rating \t timestamp, no header
    return "".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in zip(*table, strict=True))


def ratings_dat(table) -> str:  # MovieLens-1M/10M: UserID::MovieID::Rating::Timestamp
    return "".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in zip(*table, strict=True))


def ratings_csv(table) -> str:  # MovieLens-latest: header userId,movieId,rating,timestamp; ratings as 4.0
    return "userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{i},{r:.1f},{t}\n" for u, i, r, t in zip(*table, strict=True)
    )


def inter(table) -> str:  # RecBole's atomic file, as in its dataset_example/ml-100k/ml-100k.inter
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    return header + "".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in zip(*table, strict=True))


FORMATS = {
    "u.data": ("movielens-100k", u_data),
    "ratings.dat": ("movielens-dat", ratings_dat),
    "ratings.csv": ("csv", ratings_csv),
    "ml-100k.inter": ("recbole", inter),
}


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_is_read_as_it_is_and_detected(name: str, table, tmp_path: Path) -> None:
    ratings_format, render = FORMATS[name]
    path = write(tmp_path / name, render(table))
    assert detect_ratings_format(path, path.read_text().splitlines()[0]) == ratings_format
    users, items, stars = read_ratings(path)
    assert users.dtype == items.dtype == np.int64 and stars.dtype == np.float64
    np.testing.assert_array_equal(users, table[0])
    np.testing.assert_array_equal(items, table[1])
    np.testing.assert_array_equal(stars, table[2])
    named = read_ratings(path, ratings_format=ratings_format)  # the format named gives the same
    assert all(np.array_equal(a, b) for a, b in zip(named, (users, items, stars), strict=True))
    # the task is the one the arrays give, however the file was written
    from_file = gym.make("Personalization/Ratings-v0", ratings=str(path), rank=2, n_iter=5).unwrapped
    from_arrays = RatingsEnv(table[:3], rank=2, n_iter=5)
    every_user = np.arange(from_file.n_users)
    np.testing.assert_array_equal(from_file.rewards_of(every_user), from_arrays.rewards_of(every_user))
    np.testing.assert_array_equal(from_file.item_ids, np.unique(table[1]))


def test_a_byte_order_mark_is_not_part_of_the_first_user(table, tmp_path: Path) -> None:
    plain = write(
        tmp_path / "plain.csv",
        "user,item,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r, _ in zip(*table, strict=True)),
    )
    marked = tmp_path / "marked.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    for a, b in zip(read_ratings(marked), read_ratings(plain), strict=True):
        np.testing.assert_array_equal(a, b)
    headerless = tmp_path / "headerless.csv"
    headerless.write_bytes(b"\xef\xbb\xbf" + b"5,100,4\n6,103,2\n")
    assert read_ratings(headerless)[0].tolist() == [5, 6]  # integers, not the string '\ufeff5'


def test_bad_rating_files_are_named_with_their_line(tmp_path: Path) -> None:
    def error(path: Path, **kwargs) -> str:
        with pytest.raises((ValueError, FileNotFoundError)) as info:
            read_ratings(path, **kwargs)
        return str(info.value)

    dat = write(tmp_path / "ratings.dat", "1::10::4::978300760\n1::11::four::978302109\n")
    assert error(dat) == f"ratings: {dat}, line 2: rating 'four' is not a number"
    short = write(tmp_path / "short.dat", "1::10::4::978300760\n2::11\n")
    assert error(short) == f"ratings: {short}, line 2: 2 columns, expected at least 3"
    tabs = write(tmp_path / "tabs.tsv", "user\titem\trating\n1\t2\t3\n")
    assert "is tab-separated, but its first line 'user\\titem\\trating' is neither a RecBole header" in error(tabs)
    assert read_ratings(tabs, ratings_format="recbole")[2].tolist() == [3.0]  # named, a plain header is one too
    header_only = write(tmp_path / "only.inter", "user_id:token\titem_id:token\trating:float\n")
    assert error(header_only) == f"ratings: {header_only} has a header and no ratings"
    wide = write(tmp_path / "wide.data", "1\t2\t3\t4\t5\n")
    assert error(wide) == (f"ratings: {wide} has 5 fields per line; {RATINGS_FORMATS['movielens-100k']}")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("user,item,rating\nJos\xe9,1,4\n".encode("latin-1"))
    assert error(latin).startswith(
        f"ratings: {latin} is not UTF-8 text (invalid continuation byte at byte 20); save it as UTF-8"
    )  # 17 + 3 bytes before
    assert error(tmp_path) == f"ratings: {tmp_path} is a folder; give the rating file in it"
    assert error(tmp_path / "none.csv") == f"ratings: file {tmp_path / 'none.csv'} not found"
    assert error(dat, ratings_format="dat") == (
        "ratings_format must be one of ('auto', 'csv', 'movielens-100k', 'movielens-dat', 'recbole'), got 'dat'"
    )
    # a format named against the file's content fails on the content, naming the file
    assert f"ratings: {dat}'s header ['1::10::4::978300760'] lacks column(s) ['user', 'item', 'rating']" in error(
        dat, ratings_format="csv"
    )


def test_columns_given_by_the_user_win_over_the_known_names(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "userId,movieId,rating,stars\n1,2,3,5\n")
    assert read_ratings(path)[2].tolist() == [3.0]  # MovieLens's names, found with the default columns
    assert read_ratings(path, columns=("userId", "movieId", "stars"))[2].tolist() == [5.0]


@pytest.mark.parametrize(("dataset", "name"), [("ml-100k", "u.data"), ("ml-1m", "ratings.dat"),
                                               ("ml-latest-small", "ratings.csv"), ("ml-100k", "ml-100k.inter")])  # fmt: skip
def test_movielens_task_reads_the_unzipped_folder(dataset: str, name: str, table, tmp_path: Path) -> None:
    write(tmp_path / dataset / name, FORMATS[name][1](table))
    env = gym.make("Personalization/MovieLens-v0", dataset=dataset, data_dir=str(tmp_path), rank=2, n_iter=5)
    task = env.unwrapped
    assert isinstance(task, MovieLensEnv) and task.ratings_file == tmp_path / dataset / name
    every_user = np.arange(task.n_users)
    np.testing.assert_array_equal(
        task.rewards_of(every_user), RatingsEnv(table[:3], rank=2, n_iter=5).rewards_of(every_user)
    )
    assert env.action_space.n == len(np.unique(table[1]))


def test_movielens_task_passes_the_environment_checkers_and_finds_the_data_root(table, tmp_path, monkeypatch) -> None:
    write(tmp_path / "ml-100k" / "u.data", u_data(table))
    monkeypatch.setenv(personalization_gym.DATA_ENV_VAR, str(tmp_path))
    gymnasium_check_env(gym.make("Personalization/MovieLens-v0", rank=2, n_iter=5).unwrapped)
    sb3_check_env(gym.make("Personalization/MovieLens-v0", rank=2, n_iter=5).unwrapped)


def test_movielens_task_errors(table, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(personalization_gym.DATA_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError) as info:
        MovieLensEnv(data_dir=tmp_path)
    message = str(info.value)
    assert message.startswith("MovieLens ml-100k not found: no folder with a ratings file (u.data, ratings.dat, ")
    assert f"  - {tmp_path / 'ml-100k'} (data_dir argument)" in message
    assert "get ml-100k.zip from https://grouplens.org/datasets/movielens/" in message
    folder = tmp_path / "ml-100k"
    write(folder / "u.data", u_data(table))
    with pytest.raises(ValueError, match=r"is the ml-100k folder itself, but a data root is expected"):
        MovieLensEnv(data_dir=folder)
    with pytest.raises(ValueError, match=r"^dataset must be one of \('ml-100k', 'ml-1m', "):
        MovieLensEnv(dataset="ml-100", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"^MovieLens-v0 reads ratings from the dataset's own file; use Ratings-v0"):
        MovieLensEnv(data_dir=tmp_path, ratings="other.csv")
    assert personalization_gym.data_kwargs("Personalization/MovieLens-v0", str(tmp_path)) == {"data_dir": str(tmp_path)}


def test_the_movielens_study_runs_on_the_folder_given_and_says_when_it_is_missing(table, tmp_path: Path) -> None:
    write(tmp_path / "data" / "ml-100k" / "u.data", u_data(table))
    out = tmp_path / "out"
    args = ("movielens", "--agents", "a2c", "dqn", "--seeds", "2", "--steps", "64", "--out", str(out), "--workers", "1")
    result = call_script("reproduce.py", *args, "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    report = (out / "report.md").read_text()
    task = MovieLensEnv(data_dir=tmp_path / "data")  # the packaged experiment's task: the defaults
    assert (
        f"Task: ratings from {task.ratings_file}; {task.read_report}; the task's {task.fit_report}." in report
        and "## movielens (Personalization/MovieLens-v0)" in report
    )
    with open(out / "movielens" / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert {(row["agent"], row["seed"]) for row in rows} == {("a2c", "0"), ("a2c", "1"), ("dqn", "0"), ("dqn", "1")}
    # without the data: the experiment is reported as not run, with where it looked and where to get MovieLens
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = call_script("reproduce.py", *args[:-4], "--out", str(tmp_path / "out2"), "--data-dir", str(empty))
    assert missing.returncode != 0
    text = (tmp_path / "out2" / "report.md").read_text()
    assert "Not run: its data is missing." in text and "https://grouplens.org/datasets/movielens/" in text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(list(FORMATS)),
    rows=st.lists(
        st.tuples(st.integers(0, 10**12), st.integers(0, 10**12), st.sampled_from([0.5, 1.0, 2.5, 4.0, 5.0]),
                  st.integers(0, 2**31)),
        min_size=1, max_size=40,
    ),
    mark=st.booleans(),
    blank_lines=st.booleans(),
)  # fmt: skip
def test_the_c_parser_reads_what_the_line_reader_reads(name, rows, mark, blank_lines, tmp_path: Path) -> None:
    """Every file numpy's C parser reads gives the arrays the line-by-line reader gives: the same formats, header
    rule, columns, byte-order mark and blank lines, ids as integers."""
    users, items, stars, stamps = (np.array(column) for column in zip(*rows, strict=True))
    text = FORMATS[name][1]((users, items, stars, stamps))
    if name != "ratings.csv":  # the other formats' writers print whole stars
        stars = np.floor(stars)
    if blank_lines:
        text = text.replace("\n", "\n\n", 2)
    path = write(tmp_path / name, ("\ufeff" if mark else "") + text)
    fast = rating_files._read_integer_ids(path, DEFAULT_COLUMNS, "auto")
    assert fast is not None  # integer ids: the C parser reads it
    for read in (fast, rating_files._read_lines(path, DEFAULT_COLUMNS, "auto")):
        np.testing.assert_array_equal(read[0], users)
        np.testing.assert_array_equal(read[1], items)
        np.testing.assert_array_equal(read[2], stars)
        assert read[0].dtype == read[1].dtype == np.int64 and read[2].dtype == np.float64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user,item,rating\n1,2,3\n1,3,x\n", "line 3: rating 'x' is not a number"),
        ("1\t2\t3\t4\n1\t2\n", "line 2: 2 columns, expected at least 3"),
        ("userId,movieId,rating\n1,2,3\n\n\n1,3,4.0.1\n", "line 5: rating '4.0.1' is not a number"),
    ],
)
def test_a_row_the_c_parser_refuses_is_named_by_its_line(text: str, message: str, tmp_path: Path) -> None:
    path = write(tmp_path / "ratings.csv" if "," in text else tmp_path / "u.data", text)
    assert rating_files._read_integer_ids(path, DEFAULT_COLUMNS, "auto") is None
    with pytest.raises(ValueError, match=re.escape(message)):
        read_ratings(path)


def test_text_ids_are_read_line_by_line_as_text(tmp_path: Path) -> None:
    path = write(tmp_path / "ratings.csv", "user,item,rating\nalice,song-1,4\nbob,song-1,2\n")
    users, items, stars = read_ratings(path)
    assert users.tolist() == ["alice", "bob"] and items.tolist() == ["song-1", "song-1"] and stars.tolist() == [4, 2]
