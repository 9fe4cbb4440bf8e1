"""Shared fixtures.

Real data comes from ``$PERSONALIZATION_GYM_DATA`` (set by ``.ci/run``) or, failing that, from
``../shared/data`` beside the project root. A test that needs data *fails* when it is missing: it never skips.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from personalization_gym.data import DATA_ENV_VAR

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _configured_data_root() -> Path:
    configured = os.environ.get(DATA_ENV_VAR)
    return Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "data"


DATA_ROOT = _configured_data_root()


def run_script(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``scripts/<name>`` as a user does, in a fresh interpreter, from the project root."""
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=PROJECT_ROOT,
    )


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data root; a test using it fails (not skips) when the data is not there."""
    if not (DATA_ROOT / "spotify" / "spotify_genres.csv").is_file():
        pytest.fail(
            f"test data not found under {DATA_ROOT}: set {DATA_ENV_VAR} to a folder holding spotify/ "
            "(in this workplace, ../shared/data beside the project root)"
        )
    return DATA_ROOT


@pytest.fixture(scope="session")
def spotify_dir(data_root: Path) -> Path:
    return data_root / "spotify"


@pytest.fixture(autouse=True)
def isolated_data_locations(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty user cache, and $PERSONALIZATION_GYM_DATA points at the real data.

    Tests of the lookup order change either one with monkeypatch; nothing is read from or written to the
    real user cache.
    """
    cache_home = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.setenv(DATA_ENV_VAR, str(DATA_ROOT))
    return cache_home


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


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

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
