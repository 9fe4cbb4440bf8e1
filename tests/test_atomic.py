"""Files written whole or not at all (sb3_entropy.atomic): a failure during a write leaves the old file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sb3_entropy.atomic import atomic_path, write_text_atomically


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    write_text_atomically(target, "old,complete\n")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as temporary:
        with open(temporary, "w") as stream:
            stream.write("new,half")  # half of the new file is on disk when the write fails
        raise OSError("disk full")
    assert target.read_text() == "old,complete\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_a_finished_write_replaces_the_file_and_keeps_its_suffix(tmp_path: Path) -> None:
    target = tmp_path / "figure.png"
    with atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".png" and temporary != target
        temporary.write_bytes(b"\x89PNG")
    assert target.read_bytes() == b"\x89PNG" and sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]
    assert write_text_atomically(tmp_path / "report.md", "# report\n").read_text() == "# report\n"
