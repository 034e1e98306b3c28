"""The Prefect server `prefpipe run` starts for itself: a real one, on loopback, that the run's Prefect
client finds through PREFECT_API_URL and that ends with the run; one that cannot start says why."""
from __future__ import annotations

import os

import httpx
import pytest

from flows.temporary_server import TemporaryServer
from prefpipe.errors import PrefpipeError

pytestmark = pytest.mark.slow  # a real Prefect server starts: ~10-40 s on a loaded CPU


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / ".prefect"))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return tmp_path / ".prefect"


def test_it_serves_the_api_on_loopback_until_stopped(home):
    server = TemporaryServer().start()
    try:
        assert os.environ["PREFECT_API_URL"] == server.api_url
        assert server.api_url.startswith("http://127.0.0.1:")
        server.ready()
        assert httpx.get(f"{server.api_url}/health", timeout=10).json() is True
        made = httpx.post(f"{server.api_url}/flows/", json={"name": "probe"}, timeout=10)
        assert made.status_code in (200, 201), made.text
        assert (home / "prefect.db").exists()  # the project's database: `prefpipe ui` shows its runs
    finally:
        server.stop()
    assert server.process.poll() is not None
    assert "PREFECT_API_URL" not in os.environ
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.api_url}/health", timeout=5)


def test_a_server_that_cannot_start_names_its_log(home, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL",
                       f"sqlite+aiosqlite:///{tmp_path}/missing/prefect.db")
    server = TemporaryServer().start()
    try:
        with pytest.raises(PrefpipeError) as failed:
            server.ready()
    finally:
        server.stop()
    assert str(failed.value) == (f"the temporary Prefect server exited with code 3 before it answered; "
                                 f"its log: {home / 'temporary-server.log'}")
    assert "unable to open database file" in (home / "temporary-server.log").read_text()
    assert "PREFECT_API_URL" not in os.environ
