"""One writer at a time: alias moves and their history entries happen under a lock shared by every process that
writes to the same registry.

MLflow has no compare-and-set, so two promotions at the same moment could both read the same champion and each write
a history entry that claims to replace it. The lock serialises them. Two kinds, chosen by the lock's address:

- a file path (`data/mlflow/registry.lock`): an exclusive `flock`, for a registry used from one machine (the sqlite
  default, or a tracking server whose clients all run here);
- a PostgreSQL URL (`postgresql://user@host:5432/db`, a SQLAlchemy `postgresql+psycopg2://` one too): a
  session-level advisory lock in that database, for clients on many machines (the production profile uses the
  database behind the tracking server).
"""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_TIMEOUT_S = 60.0


class LockTimeout(RuntimeError):
    pass


@contextmanager
def registry_lock(address: str, model_name: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    """Hold the registry's write lock for `model_name` (a file path or a postgresql:// URL) while the block runs."""
    if address.startswith(("postgresql://", "postgres://", "postgresql+psycopg2://")):
        with _advisory_lock(address, model_name, timeout_s):
            yield
    else:
        with _file_lock(Path(address), timeout_s):
            yield


@contextmanager
def _file_lock(path: Path, timeout_s: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as busy:
                if time.monotonic() > deadline:
                    message = f"the registry lock {path} is held by another process for over {timeout_s} s"
                    raise LockTimeout(message) from busy
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(url: str, model_name: str, timeout_s: float) -> Iterator[None]:
    import psycopg2

    key = int.from_bytes(
        hashlib.sha256(f"fraud_detection.registry:{model_name}".encode()).digest()[:8], "big", signed=True
    )
    connection = psycopg2.connect(url.replace("+psycopg2", "", 1), connect_timeout=10)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = %s", (f"{int(timeout_s * 1000)}ms",))
            try:
                cursor.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg2.errors.LockNotAvailable as error:
                raise LockTimeout(f"the registry lock of {model_name} is held for over {timeout_s} s") from error
            try:
                yield
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()
