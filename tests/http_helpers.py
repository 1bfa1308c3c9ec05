"""Helpers for the tests that start servers as subprocesses (`bentoml serve`, a Bento, Redis)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, server: subprocess.Popen, log: Path | None = None, timeout_s: float = 180) -> None:
    """Until `url`/readyz answers 200; fails (with the server's log, if any) when it exits or the time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}: {_tail(log)}")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    pytest.fail(f"{url} was not ready within {timeout_s} s: {_tail(log)}")


def _tail(log: Path | None) -> str:
    return log.read_text()[-3000:] if log is not None and log.exists() else "(no log)"
