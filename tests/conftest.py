"""Shared fixtures, and the real data the tests read.

The tests read real MNIST (torchvision's layout, ``MNIST/raw/``) and the real Spotify CSVs. They find them the
way the package finds data, in this order:

1. ``$PERSONALIZATION_GYM_DATA``, if set: a data root that must hold ``MNIST/raw/`` (nothing is downloaded);
2. ``../shared/data`` beside the project root, if it holds ``MNIST/``;
3. the user cache (``$XDG_CACHE_HOME/personalization_gym``), where MNIST is downloaded once, through the
   package's own download path and checksums, when it is missing; later runs reuse it.
   ``$PERSONALIZATION_GYM_TEST_MNIST_URL`` replaces torchvision's download location (a folder URL of the four
   ``.gz`` files).

The Spotify CSVs ship with the package; a ``spotify/`` folder in the data root, when there is one, is the
independent copy they are compared with. A parallel run (pytest-xdist, the default: ``-n auto`` in pyproject.toml)
finds the data once in its main process, before its workers start; a serial run (``-n 0``) looks for it only when
a test of the run needs it. When the data cannot be had, the run stops at once with one message naming the three
ways to provide it: no test is skipped.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import os
import runpy
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings

# Under mutmut (docs/development.md#mutation-testing) a test need only pass or fail: shrinking a failing example to
# its smallest form can take minutes and would count a killed mutant as a timeout.
if "MUTANT_UNDER_TEST" in os.environ:
    settings.register_profile("mutation", phases=[p for p in Phase if p is not Phase.shrink], deadline=None)
    settings.load_profile("mutation")

from personalization_gym.data import DATA_ENV_VAR, DataIntegrityError, DataNotFoundError, user_cache_dir, verify_files
from personalization_gym.envs.music import PACKAGED_SPOTIFY
from personalization_gym.image_data import MNIST, load_image_dataset

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
MNIST_URL_VAR = "PERSONALIZATION_GYM_TEST_MNIST_URL"
MNIST_DOWNLOAD_MB = 12  # the four .gz files (11.6 MB); 55 MB once decompressed
# The tags every evaluation logs, written out here as the tests' own statement of them (not read from the metrics
# table, so that a test of the table's consumers checks them against something independent).
ENTROPY_TAGS = ("entropy/marginal", "entropy/marginal_normalized", "entropy/per_state", "entropy/greedy_marginal")
ACTION_TAGS = ("actions/effective_number", "actions/coverage", "actions/top1_share")
EXPOSURE_TAGS = ("exposure/gini", "exposure/long_tail_share", "exposure/aggregate_diversity")
REWARD_TAGS = (
    "eval/reward_stochastic", "eval/reward_greedy", "eval/expected_reward", "eval/regret", "eval/optimal_action_rate",
)  # fmt: skip

DATA_ROOT: Path | None = None  # set once, when the first test that needs data is collected


class TestDataUnavailable(Exception):
    """The tests' real data is in none of the three places and could not be downloaded."""


def locate_test_data() -> Path:
    """The data root holding MNIST for this run: from the environment variable, ../shared/data or the cache."""
    configured = os.environ.get(DATA_ENV_VAR)
    try:
        if configured:
            verify_files(Path(configured) / MNIST.folder, MNIST.digests, MNIST.name, MNIST.algorithm)
            return Path(configured)
        if (SHARED_DATA / MNIST.folder).is_dir():
            verify_files(SHARED_DATA / MNIST.folder, MNIST.digests, MNIST.name, MNIST.algorithm)
            return SHARED_DATA
        folder = load_image_dataset(MNIST, download=True, download_url=os.environ.get(MNIST_URL_VAR) or None).folder
        return folder.parent
    except DataNotFoundError as error:  # not on this machine, and the download failed
        cause = " ".join(str(error.__cause__ or error).split())
        reason = (
            f"it is in neither ${DATA_ENV_VAR} (unset), {SHARED_DATA} nor the user cache, and the download "
            f"failed ({cause})"
        )
        raise TestDataUnavailable(_unavailable(reason)) from None
    except (DataIntegrityError, ValueError) as error:  # found, but incomplete or not the pinned files
        where = f"${DATA_ENV_VAR}={configured}" if configured else "where it was found"
        raise TestDataUnavailable(_unavailable(f"the data {where} failed its checks: {error}")) from None


def _unavailable(reason: str) -> str:
    return (
        f"The tests need real MNIST data (torchvision's layout, MNIST/raw/) and could not get it: {reason}\n"
        f"Provide it in one of three ways: set {DATA_ENV_VAR} to a folder holding MNIST/raw/; put "
        f"that folder at {SHARED_DATA}; or, with {DATA_ENV_VAR} unset, let the tests download it once "
        f"(about {MNIST_DOWNLOAD_MB} MB, network needed on the first run only) into {user_cache_dir()}."
    )


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: one per core, so one torch thread each
        import torch

        torch.set_num_threads(1)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per core, at most 8 (each holds torch and starts processes of its own); the
    PYTEST_XDIST_AUTO_NUM_WORKERS environment variable, when set, decides instead."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)


def pytest_sessionstart(session: pytest.Session) -> None:
    """In a parallel run (pytest-xdist, the default) the workers collect the tests, not the main process, and no
    two workers may download the data at once or each stop the run: the main process finds the data once, before
    it starts the workers, and hands it to them in $PERSONALIZATION_GYM_DATA."""
    if not session.config.pluginmanager.has_plugin("dsession"):  # a serial run (-n 0), or a worker
        return
    global DATA_ROOT
    try:
        DATA_ROOT = locate_test_data()
    except TestDataUnavailable as error:
        # pytest repeats an exit's reason this early, so the message is written once and the reason is short
        sys.stderr.write(f"{error}\nTests that need no data run without it in one process: add -n 0.\n")
        pytest.exit("no test data (see above)", returncode=1)
    os.environ[DATA_ENV_VAR] = str(DATA_ROOT)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    global DATA_ROOT
    if DATA_ROOT is None and any("data_root" in getattr(item, "fixturenames", ()) for item in items):
        try:
            DATA_ROOT = locate_test_data()
        except TestDataUnavailable as error:
            pytest.exit(str(error), returncode=1)


def run_script(
    name: str, *args: str, env: dict[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run ``scripts/<name>`` as a user does, in a fresh interpreter, from the project root (``timeout``: a guard
    against a hang, which fails the test)."""
    return subprocess.run(
        [sys.executable, str(_script_path(name)), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=PROJECT_ROOT,
        timeout=timeout,
    )


@functools.cache
def _script_main(name: str) -> Callable[[list[str]], int | None]:
    return runpy.run_path(str(_script_path(name)))["main"]


def _script_path(name: str) -> Path:
    """``scripts/<name>``, or ``benchmarks/<name>`` for the benchmark scripts (``bench_*.py``)."""
    return PROJECT_ROOT / ("benchmarks" if name.startswith("bench_") else "scripts") / name


def call_script(name: str, *args: str) -> subprocess.CompletedProcess:
    """``scripts/<name>`` with ``args`` as ``run_script`` runs it, but in this process: the script's own
    ``main(args)``, from the project root, its standard output and error captured, the exit status from its return
    value or its SystemExit (argparse's errors are 2). It saves the 2 s an interpreter takes to start and import
    torch, so tests of what a script does with its arguments use it; each script keeps end-to-end tests through
    ``run_script``. The scripts set torch's thread count for their runs: the caller's is restored afterwards."""
    import torch  # only here: importing the tasks for a test must not import torch

    stdout, stderr = io.StringIO(), io.StringIO()
    threads, folder, argv = torch.get_num_threads(), os.getcwd(), sys.argv
    os.chdir(PROJECT_ROOT)
    sys.argv = [name, *args]  # argparse names the program after sys.argv[0], as on the command line
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                status = _script_main(name)(list(args))
            except SystemExit as exit:
                status = exit.code
    finally:
        os.chdir(folder)
        sys.argv = argv
        torch.set_num_threads(threads)
    if isinstance(status, str):  # sys.exit("message"): printed, exit status 1, as Python does
        stderr.write(status + "\n")
        status = 1
    return subprocess.CompletedProcess([name, *args], status or 0, stdout.getvalue(), stderr.getvalue())


def tiny_experiment(steps: int = 96) -> str:
    """An experiment file's text: A2C and DQN on a small Behavior-v0 (6 items, 200 evaluation users), a [16]
    network, an evaluation every 32 steps; a run trains in about a second."""
    return (
        "task: Personalization/Behavior-v0\n"
        "task_kwargs: {n_actions: 6, state_dim: 4, n_eval: 200}\n"
        f"net_arch: [16]\nsteps: {steps}\neval_freq: 32\n"
        "agents:\n  a2c: {learning_rate: 1.0e-3}\n  dqn: {learning_rate: 1.0e-3}\n"
    )


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data root (it holds MNIST/raw/), found before the first test ran."""
    assert DATA_ROOT is not None, "pytest_collection_modifyitems locates the data for every test that needs it"
    return DATA_ROOT


@pytest.fixture(scope="session")
def spotify_dir() -> Path:
    """The real Spotify CSVs: the data root's spotify/ folder when it has one (an independent copy), else the
    package's own."""
    configured = os.environ.get(DATA_ENV_VAR)
    for root in ([Path(configured)] if configured else []) + [SHARED_DATA]:
        if (root / "spotify" / "spotify_genres.csv").is_file():
            return root / "spotify"
    return PACKAGED_SPOTIFY


@pytest.fixture(autouse=True)
def isolated_data_locations(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty user cache, and $PERSONALIZATION_GYM_DATA points at the real data root.

    Tests of the lookup order change either one with monkeypatch; nothing is read from or written to the
    real user cache (the data root may be in it, found before the test).
    """
    cache_home = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    if DATA_ROOT is not None:
        monkeypatch.setenv(DATA_ENV_VAR, str(DATA_ROOT))
    else:
        monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    return cache_home


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # a client that hangs up early (torchvision probes URLs for redirects) is not an error of the server
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalFileServer:
    """A real HTTP server on 127.0.0.1 (free port) serving one folder, and counting the requests."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(_QuietHandler):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self) -> None:
                requests.append(self.path)
                super().do_GET()

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def serve_folder() -> Iterator:
    """Start LocalFileServer(folder) servers; all are shut down after the test."""
    servers: list[LocalFileServer] = []

    def start(folder: Path) -> LocalFileServer:
        server = LocalFileServer(folder)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


# --------------------------------------------------------------------------------------------------
# A real TensorBoard server on 127.0.0.1, read through its HTTP data routes


class TensorBoardServer:
    """``tensorboard --logdir LOGDIR`` on a free port of 127.0.0.1; ``get``/``post`` read its data routes."""

    def __init__(self, logdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
             "--port", str(port), "--load_fast", "false", "--reload_interval", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def get(self, route: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.base}{route}{query}", timeout=20) as response:
            return json.loads(response.read())

    def post(self, route: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{self.base}{route}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read())

    def wait_for(self, ready: Callable[[TensorBoardServer], bool], seconds: float = 120) -> None:
        """Until ``ready(self)`` holds (TensorBoard loads event files in the background): at most ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                if ready(self):
                    return
            except (OSError, KeyError, ValueError):
                pass
            assert self.process.poll() is None, "tensorboard exited"
            assert time.monotonic() < deadline, f"tensorboard did not serve the runs within {seconds} s"
            time.sleep(0.5)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def tensorboard_server() -> Iterator[Callable[[Path], TensorBoardServer]]:
    """Start TensorBoardServer(logdir) servers; all are stopped after the test."""
    servers: list[TensorBoardServer] = []

    def start(logdir: Path) -> TensorBoardServer:
        servers.append(TensorBoardServer(logdir))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
