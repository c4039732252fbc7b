"""`tunelab dashboard` from the shell: what it announces, and that the announced address answers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

import tunelab as tl

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]


def _free_port(host: str) -> int | None:
    """A free port on ``host``, or None where the address cannot be bound on this machine."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as probe:
            probe.bind((host, 0))
            return probe.getsockname()[1]
    except OSError:
        return None


@contextlib.contextmanager
def _dashboard(url: str, host: str) -> Iterator[tuple[str, int]]:
    """The command serving ``url`` on ``host``: its first lines of output (up to the address it
    announces) and its port; stopped on leaving."""
    port = _free_port(host)
    if port is None:
        pytest.skip(f"{host} cannot be bound here")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "1000"}  # the announcement on one line
    process = subprocess.Popen([sys.executable, "-m", "tunelab.cli", "dashboard", "--storage", url, "--host", host,
                                "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        said = ""
        while "dashboard of" not in said:
            line = process.stdout.readline()
            if not line:
                pytest.fail(f"the dashboard ended: {said}")
            said += line
        yield said, port
    finally:
        process.terminate()
        process.wait(10)


def _status(address: str) -> int:
    """The HTTP status of ``address`` once the server answers (it starts after announcing itself)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(address, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture()
def url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="s")
    return url


def test_a_storage_it_cannot_open_is_an_error_before_the_dashboard_is_announced(capsys):
    """It printed "tunelab dashboard of bogus://x at http://127.0.0.1:8050/" and then the error."""
    from tunelab.cli import main

    assert main(["dashboard", "--storage", "bogus://x", "--port", "8050"]) == 2
    out = capsys.readouterr()
    assert "storage scheme 'bogus' is not supported" in out.err and "dashboard of" not in out.out


def test_another_loopback_address_is_served_without_a_warning_and_answers(url):
    """On 127.0.0.2 the announced page answered 400 (its host was not one the dashboard allows),
    after a warning that anyone who can reach it sees the studies: loopback is this machine only."""
    with _dashboard(url, "127.0.0.2") as (said, port):
        assert f"at http://127.0.0.2:{port}/" in said and "warning" not in said
        assert _status(f"http://127.0.0.2:{port}/api/studies") == 200


def test_an_ipv6_address_is_announced_in_brackets(url):
    """http://::1:8050/ is no address a browser opens; http://[::1]:8050/ is."""
    with _dashboard(url, "::1") as (said, port):
        assert f"at http://[::1]:{port}/" in said and "warning" not in said
        assert _status(f"http://[::1]:{port}/api/studies") == 200


def test_memory_storage_is_refused_with_what_to_pass_instead():
    """A dashboard of memory storage is a new, empty store of its own: it served "no studies yet"."""
    command = [sys.executable, "-m", "tunelab.cli", "dashboard", "--storage", "memory", "--port",
               str(_free_port("127.0.0.1"))]
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=60)  # (served until stopped)
    assert done.returncode == 2 and "dashboard of" not in done.stdout
    assert "memory storage" in done.stderr and "--storage sqlite:///" in done.stderr


def test_a_database_password_is_not_announced(postgres_url):
    """The announcement printed the storage URL as given, password and all, to the terminal and
    whatever log keeps it."""
    tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=postgres_url, name="s")
    with_password = postgres_url.replace("@", ":s3cret@", 1)  # the test server trusts any password
    with _dashboard(with_password, "127.0.0.1") as (said, port):
        assert "s3cret" not in said and ":***@" in said
        assert _status(f"http://127.0.0.1:{port}/api/studies") == 200
