"""`cached_file` writes a file or a folder once, atomically: a failed write leaves nothing, and when another process
wins the race for a folder its copy is kept and ours dropped (how two `umi train --only` processes share a stage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from umi.models.embedded import cached_file


def _fill(folder: Path, text: str) -> None:
    folder.mkdir()
    (folder / "a.txt").write_text(text)


def test_a_folder_is_written_once_and_a_lost_race_keeps_the_winner(tmp_path: Path) -> None:
    out = tmp_path / "stage"

    def racer(tmp: Path) -> None:
        _fill(tmp, "ours")
        _fill(out, "theirs")  # another process renamed its copy into place first

    assert cached_file(out, racer) == out
    assert (out / "a.txt").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage"]  # our temporary copy is gone
    cached_file(out, lambda tmp: _fill(tmp, "again"))
    assert (out / "a.txt").read_text() == "theirs"  # written once


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def broken(tmp: Path) -> None:
        _fill(tmp, "half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        cached_file(tmp_path / "stage", broken)
    assert list(tmp_path.iterdir()) == []

    def broken_file(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        cached_file(tmp_path / "x.gguf", broken_file)
    assert list(tmp_path.iterdir()) == []
