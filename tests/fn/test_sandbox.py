"""What the bubblewrap sandbox binds back behind its private /tmp."""

from __future__ import annotations

from pathlib import Path

from xplane.fn.kinds.sandbox import interpreter_binds


def test_an_interpreter_under_tmp_brings_its_environment(tmp_path: Path) -> None:
    script = tmp_path / "fn"
    script.write_text("#!/tmp/checkout/.venv/bin/python -u\nprint(1)\n")
    assert interpreter_binds(script) == [Path("/tmp/checkout/.venv")]


def test_an_interpreter_outside_tmp_needs_nothing(tmp_path: Path) -> None:
    script = tmp_path / "fn"
    script.write_text("#!/usr/bin/python3\n")
    assert interpreter_binds(script) == []
    script.write_text("#!/usr/bin/env sh\n")
    assert interpreter_binds(script) == []


def test_an_interpreter_found_through_env_under_tmp(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bindir = Path("/tmp") / f"xp-sbx-{tmp_path.name}" / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    interp = bindir / "myinterp"
    interp.write_text("#!/bin/sh\n")
    interp.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    script = tmp_path / "fn"
    script.write_text("#!/usr/bin/env myinterp\n")
    try:
        assert interpreter_binds(script) == [bindir.parent]
    finally:
        interp.unlink()
        bindir.rmdir()
        bindir.parent.rmdir()


def test_binaries_and_unreadable_files_need_nothing(tmp_path: Path) -> None:
    binary = tmp_path / "bin"
    binary.write_bytes(b"\x7fELF\x02\x01\x01")
    assert interpreter_binds(binary) == []
    assert interpreter_binds(tmp_path / "missing") == []
