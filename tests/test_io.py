"""wideseek.io: atomic file and directory writes, the JSON-lines reader's torn-tail rule, append
and repair; and the trajectory reader built on it."""

import json
import os
import stat
from pathlib import Path

import pytest

from wideseek.errors import DataError
from wideseek.io import (
    append_jsonl_line,
    atomic_write_bytes,
    atomic_write_dir,
    atomic_write_text,
    atomic_writer,
    iter_jsonl,
    repair_torn_tail,
)
from wideseek.types import (
    Task,
    Trajectory,
    iter_trajectories,
    read_trajectories,
    write_trajectories,
)


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "report.md"
    path.write_text("old")
    atomic_write_text(path, "new ü")
    atomic_write_bytes(tmp_path / "blob", b"\x00\x01")
    assert path.read_text(encoding="utf-8") == "new ü"
    assert (tmp_path / "blob").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob", "report.md"]


def test_a_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_writer(path) as f:
        f.write("half of the new content")
        raise RuntimeError("killed mid-write")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "\udcff")  # cannot be encoded: fails before any replace
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.jsonl"]


def test_atomic_write_gives_new_files_the_usual_permissions(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic", "x")
    mode = stat.S_IMODE
    assert mode((tmp_path / "atomic").stat().st_mode) == mode(plain.stat().st_mode)


def test_atomic_write_dir_replaces_the_directory_only_when_the_write_succeeds(tmp_path):
    out = tmp_path / "model"

    def write(text):
        return lambda tmp: (tmp / "config.json").write_text(text)

    atomic_write_dir(write("first"), out)
    atomic_write_dir(write("second"), out)
    assert (out / "config.json").read_text() == "second"

    def fail(tmp):
        (tmp / "config.json").write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write_dir(fail, out)
    assert (out / "config.json").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary or .old left
    plain = tmp_path / "plain"
    plain.mkdir()
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_a_torn_last_line_is_dropped_and_a_bad_line_elsewhere_names_its_line(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3, "b"')  # killed mid-append: no newline
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (3, {"a": 2})]
    with pytest.raises(DataError, match=r"ledger\.jsonl:4: not JSON \("):
        list(iter_jsonl(path, torn_tail=False))  # an input file is not allowed a torn tail
    path.write_text('{"a": 1}\n{"a": 3, "b"\n{"a": 2}\n')
    with pytest.raises(DataError, match=r"ledger\.jsonl:2: not JSON"):
        list(iter_jsonl(path))
    path.write_text('{"a": 1}\n{"a": 3, "b"\n')  # a bad last line that has its newline
    with pytest.raises(DataError, match=r"ledger\.jsonl:2: not JSON"):
        list(iter_jsonl(path))


def test_values_follow_json_rules_on_the_fast_path_and_off_it(tmp_path):
    path = tmp_path / "x.jsonl"
    # line 2 is a lone surrogate, which only json's own parser accepts
    path.write_text('{"ids": [1, 2], "x": 0.1}\n"\\ud800"\nNaN\n')
    rows = [value for _, value in iter_jsonl(path)]
    assert rows[:2] == [{"ids": [1, 2], "x": 0.1}, "\ud800"] and rows[2] != rows[2]


def test_bad_utf8_is_a_data_error_with_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n"\xff"\n')
    with pytest.raises(DataError, match=r"x\.jsonl:2: not UTF-8"):
        list(iter_jsonl(path))


def test_append_after_a_torn_tail_is_repaired_first(tmp_path):
    path = tmp_path / "results.jsonl"
    repair_torn_tail(path)  # no file: nothing to do
    append_jsonl_line(path, json.dumps({"n": 1}))
    with path.open("a") as f:
        f.write('{"n": 2, "pad": "' + "x" * 100_000)  # torn, longer than one read-back chunk
    repair_torn_tail(path)
    append_jsonl_line(path, json.dumps({"n": 3}))
    assert [row["n"] for _, row in iter_jsonl(path, torn_tail=False)] == [1, 3]
    before = path.read_bytes()
    repair_torn_tail(path)  # intact: untouched
    assert path.read_bytes() == before
    path.write_text('{"only": "torn')
    repair_torn_tail(path)
    assert path.read_bytes() == b""


def test_trajectory_reader_drops_a_torn_tail_and_names_a_bad_line(tmp_path):
    trajectories = [Trajectory(task=Task(id=f"t{i}", question="q"), mode="multi") for i in (1, 2)]
    path = tmp_path / "trajectories.jsonl"
    write_trajectories(path, trajectories)
    whole = path.read_text()
    path.write_text(whole + trajectories[0].model_dump_json()[:40])
    assert read_trajectories(path) == trajectories
    assert next(iter_trajectories(path)) == trajectories[0]  # streamed
    lines = whole.splitlines()
    path.write_text(lines[0][:40] + "\n" + lines[1] + "\n")
    with pytest.raises(DataError, match=r"trajectories\.jsonl:1: not JSON"):
        read_trajectories(path)
    path.write_text(lines[0] + "\n" + json.dumps({"task": {"id": "t"}}) + "\n")
    with pytest.raises(DataError, match=r"trajectories\.jsonl:2: not a trajectory \(task\."):
        read_trajectories(path)
    assert os.listdir(tmp_path) == ["trajectories.jsonl"]


def test_atomic_write_dir_when_another_writer_got_there_first(tmp_path, monkeypatch):
    out = tmp_path / "index"
    out.mkdir()
    (out / "old").write_text("o")
    replace = os.replace

    def racing_replace(src, dst):  # another process puts its copy in just before our rename
        if Path(src).name.startswith(".index.tmp-"):
            out.mkdir(exist_ok=True)
            (out / "theirs").write_text("y")
        replace(src, dst)

    monkeypatch.setattr("wideseek.io.os.replace", racing_replace)
    ours = lambda tmp: (tmp / "ours").write_text("x")  # noqa: E731
    with pytest.raises(OSError):
        atomic_write_dir(ours, out)
    assert [p.name for p in out.iterdir()] == ["theirs"]  # theirs stands, ours is gone
    atomic_write_dir(ours, out, accept_existing=lambda d: (d / "theirs").exists())
    assert [p.name for p in out.iterdir()] == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["index"]  # no temporaries left behind
