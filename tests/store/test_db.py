"""The file on disk: where it lives, its modes, schema versions, damaged and foreign files, the lock."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.objs import configuration
from xplane.store import (
    SCHEMA_VERSION,
    SchemaVersionError,
    Store,
    StoreBusyError,
    StoreCorruptError,
    StoreMissingError,
    state_dir,
    state_path,
)
from xplane.store.db import APPLICATION_ID, open_connection, upgrade


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def test_where_state_lives(tmp_path: Path) -> None:
    env = {"XPLANE_HOME": str(tmp_path / "xh"), "XDG_DATA_HOME": str(tmp_path / "data")}
    assert state_path(env=env) == tmp_path / "xh" / "state.db"
    assert state_path(home=tmp_path / "flag", env=env) == tmp_path / "flag" / "state.db"
    assert state_dir(env={"XDG_DATA_HOME": str(tmp_path / "data")}) == tmp_path / "data" / "xplane"
    assert state_dir(env={}) == Path.home() / ".local" / "share" / "xplane"


def test_open_uses_xplane_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XPLANE_HOME", str(tmp_path / "from-env"))
    with Store.open() as s:
        assert s.path == tmp_path / "from-env" / "state.db"
    with Store.open(home=tmp_path / "from-flag") as s:
        assert s.path == tmp_path / "from-flag" / "state.db"


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077, 0o277])
def test_files_are_0600_and_the_directory_0700_whatever_the_umask(
    tmp_path: Path, mask: int, umask: None
) -> None:
    os.umask(mask)
    path = tmp_path / "a" / "b" / "state.db"
    with Store.open(path) as s:
        s.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}})
        files = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")]
        assert all(f.exists() for f in files)
        assert [_mode(f) for f in files] == [0o600, 0o600, 0o600]
    assert _mode(path.parent) == 0o700
    assert _mode(path.parent.parent) == 0o700


def test_an_existing_database_with_loose_modes_is_tightened(db_path: Path) -> None:
    Store.open(db_path).close()
    os.chmod(db_path, 0o644)
    with Store.open(db_path):
        assert _mode(db_path) == 0o600


def test_wal_mode_and_synchronous(db_path: Path) -> None:
    with Store.open(db_path) as s:
        assert s._db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s._db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with Store.open(db_path, synchronous="FULL") as s:
        assert s._db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    with pytest.raises(ValueError, match="synchronous must be one of NORMAL, FULL"):
        Store.open(db_path, synchronous="OFF")


def test_a_newer_schema_is_refused_and_left_alone(db_path: Path) -> None:
    Store.open(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = _digest(db_path)
    with pytest.raises(SchemaVersionError) as e:
        Store.open(db_path)
    assert e.value.message == (
        f"{db_path} was written by a newer xplane (schema {SCHEMA_VERSION + 1}); this xplane reads up to {SCHEMA_VERSION}"
    )
    assert _digest(db_path) == before


@pytest.mark.parametrize(
    "content",
    [b"not a database at all\n", b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["text", "sqlite-header-then-garbage"],
)
def test_a_file_that_is_not_a_database_is_refused_and_left_alone(db_path: Path, content: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)
    with pytest.raises(StoreCorruptError) as e:
        Store.open(db_path)
    assert str(db_path) in str(e.value) and "left as it is" in str(e.value)
    assert db_path.read_bytes() == content


def test_someone_elses_sqlite_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    before = _digest(db_path)
    with pytest.raises(StoreCorruptError, match="not xplane's state"):
        Store.open(db_path)
    assert _digest(db_path) == before


def test_create_false_on_a_missing_database(db_path: Path) -> None:
    with pytest.raises(StoreMissingError) as e:
        Store.open(db_path, create=False)
    assert e.value.exit_code == 3
    assert not db_path.exists() and not db_path.parent.exists()


def test_an_empty_file_becomes_a_store(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.touch()
    with Store.open(db_path) as s:
        assert s.create(configuration("c"))["metadata"]["resourceVersion"] == "1"
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def _add_widgets(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE widgets (id INTEGER PRIMARY KEY)")


def _half_then_fail(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE half (id INTEGER)")
    raise RuntimeError("migration step failed")


def test_migrations_run_in_order_in_one_transaction(db_path: Path) -> None:
    Store.open(db_path).close()
    conn = open_connection(db_path, migrations={1: _add_widgets}, schema_version=2)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.execute("SELECT count(*) FROM widgets").fetchone()
    conn.close()


def test_a_failing_migration_changes_nothing(db_path: Path) -> None:
    with Store.open(db_path) as s:
        s.create(configuration("kept"))
    with pytest.raises(RuntimeError, match="migration step failed"):
        open_connection(db_path, migrations={1: _add_widgets, 2: _half_then_fail}, schema_version=3)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "widgets" not in tables and "half" not in tables
    conn.close()
    with Store.open(db_path) as s:
        assert s.get("configuration", "kept")


def test_a_missing_migration_step_is_an_error(db_path: Path) -> None:
    Store.open(db_path).close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    with pytest.raises(Exception, match="no migration from schema 1 to 2"):
        upgrade(conn, 2, {}, path=db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_a_writer_waits_for_the_lock_then_gives_up_clearly(db_path: Path) -> None:
    Store.open(db_path).close()
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Store.open(db_path, busy_timeout=0.2) as s:
            t0 = time.monotonic()
            with pytest.raises(StoreBusyError, match="another xplane process held the state database"):
                s.create(configuration("c"))
            assert time.monotonic() - t0 >= 0.15
            threading.Timer(0.3, holder.execute, ("COMMIT",)).start()
            s2 = Store.open(db_path, busy_timeout=10)
            assert s2.create(configuration("c"))["metadata"]["name"] == "c"  # waited, then wrote
            s2.close()
    finally:
        holder.close()


def test_reads_do_not_wait_for_a_writer(db_path: Path) -> None:
    with Store.open(db_path) as s:
        s.create(configuration("c"))
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE state SET value = value WHERE key = 'rv'")
    try:
        with Store.open(db_path, busy_timeout=0.1) as s:
            assert [o["metadata"]["name"] for o in s.list("configurations")] == ["c"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
