"""The README's test command on a fresh clone: the tests fetch their data once, or fail once saying how to get it.
Each test starts pytest again in a copy of the project: the module is in the slow tier.

A copy of the project (no ``../shared/data`` beside it) runs a few of its own data-reading tests in a fresh
pytest process, with no ``$PERSONALIZATION_GYM_DATA`` and an empty user cache, against a server of this test's
own on 127.0.0.1 that serves the real MNIST files as torchvision's mirrors do (gzipped).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MNIST_URL_VAR, PROJECT_ROOT

from personalization_gym.data import DATA_ENV_VAR
from personalization_gym.image_data import MNIST

# One test that reads MNIST through data_root and one Music-v0 test that compares with the Spotify copy.
SOME_DATA_TESTS = (
    "tests/test_images.py::test_determinism",
    "tests/test_music.py::test_catalogue_and_reward_matrix_match_the_csvs",
)
pytestmark = pytest.mark.slow

RAW_FILES = [name.split("/")[1] for name in MNIST.digests]


def fresh_clone(folder: Path) -> Path:
    """The project's files without git, build or result folders, in ``folder/project`` (nothing beside it)."""
    clone = folder / "project"
    shutil.copytree(
        PROJECT_ROOT,
        clone,
        ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", "results", "runs", ".*cache"),
    )
    return clone


def run_tests(clone: Path, cache: Path, url: str, *tests: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != DATA_ENV_VAR and "PYTEST" not in key}
    environment |= {"XDG_CACHE_HOME": str(cache), MNIST_URL_VAR: url}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=clone, env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_a_fresh_clone_downloads_its_test_data_once_into_the_cache(data_root: Path, tmp_path: Path, serve_folder):
    served = tmp_path / "served"
    served.mkdir()
    for name in RAW_FILES:  # the real files, gzipped as the mirrors serve them
        with open(data_root / "MNIST" / "raw" / name, "rb") as source, gzip.open(served / f"{name}.gz", "wb", 1) as out:
            shutil.copyfileobj(source, out)
    server = serve_folder(served)
    clone, cache = fresh_clone(tmp_path / "clone"), tmp_path / "cache"
    assert not (clone.parent / "shared").exists()

    first = run_tests(clone, cache, server.url, *SOME_DATA_TESTS)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "2 passed" in first.stdout and "skipped" not in first.stdout
    # torchvision probes each URL for a redirect before it downloads: every file is asked for, none other
    assert set(server.requests) == {f"/{name}.gz" for name in RAW_FILES}
    first_requests = len(server.requests)
    for name in RAW_FILES:  # the data landed in the cache, byte for byte the real files
        cached = cache / "personalization_gym" / "MNIST" / "raw" / name
        assert cached.read_bytes() == (data_root / "MNIST" / "raw" / name).read_bytes()

    second = run_tests(clone, cache, server.url, *SOME_DATA_TESTS)
    assert second.returncode == 0, second.stdout[-3000:]
    assert len(server.requests) == first_requests  # nothing downloaded the second time

    # a corrupted file in the cache is caught by the checksums, not used
    victim = cache / "personalization_gym" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    corrupted = run_tests(clone, cache, server.url, *SOME_DATA_TESTS)
    assert corrupted.returncode != 0
    assert f"checksum mismatch for {victim}" in corrupted.stdout + corrupted.stderr


@pytest.mark.parametrize("workers", ["auto", "0"], ids=["parallel", "serial"])
def test_no_data_and_no_network_fails_once_with_one_message(workers: str, tmp_path: Path, serve_folder) -> None:
    """In a parallel run (the default) the main process looks for the data before its workers start; in a serial
    one (-n 0), the collection does."""
    server = serve_folder(tmp_path)
    url = server.url
    server.close()  # nothing listens there any more: the download is refused, as with no network
    clone, cache = fresh_clone(tmp_path / "clone"), tmp_path / "cache"
    result = run_tests(clone, cache, url, "-n", workers, *SOME_DATA_TESTS)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert output.count("The tests need real MNIST data") == 1
    for way in (f"set {DATA_ENV_VAR} to a folder holding MNIST/raw/", f"at {clone.parent / 'shared' / 'data'}",
                "let the tests download it once (about 12 MB, network needed on the first run only)"):  # fmt: skip
        assert way in output, way
    assert "the download failed" in output
    assert "passed" not in output and "skipped" not in output  # the run stopped before any test
    assert "workplace" not in output


def test_an_explicit_data_folder_without_mnist_fails_and_never_downloads(tmp_path: Path, serve_folder) -> None:
    served = tmp_path / "served"
    served.mkdir()
    server = serve_folder(served)
    clone = fresh_clone(tmp_path / "clone")
    environment = {key: value for key, value in os.environ.items() if "PYTEST" not in key}
    environment |= {DATA_ENV_VAR: str(tmp_path / "empty"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    environment[MNIST_URL_VAR] = server.url
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SOME_DATA_TESTS],
        cwd=clone, env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"the data ${DATA_ENV_VAR}={tmp_path / 'empty'} failed its checks" in result.stdout + result.stderr
    assert server.requests == []  # CI's setting: the data is where it says, or the run fails; never a download
