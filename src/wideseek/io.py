"""Files that users keep: atomic whole-file writes, and JSON lines read and appended safely.

Contract:
- `atomic_write_text(path, text)` / `atomic_write_bytes(path, data)`: the new content goes to a
  uniquely named temporary file in the same directory, is flushed and fsynced, then renamed over
  `path` (`os.replace`). A reader sees the old file or the new one, never half of one; a failed
  write leaves the old file and no temporary behind. Two writers do not share a temporary.
  `atomic_writer(path)` is the same as a context manager, for content written piece by piece.
- `atomic_write_dir(write, out_dir)`: the same for a directory (a model, a cache, a world):
  `write(tmp_dir)` fills a new sibling directory, which then takes the place of `out_dir`; a
  failed write leaves the old directory and no temporary behind. Temporaries are named
  `.<name>.tmp-<pid>-*` and `.<name>.old-<pid>-*`, so a sweep can tell a dead writer's.
- `iter_jsonl(path)`: `(line_no, value)` for each non-blank line, streamed. A line that is not
  JSON raises `DataError("path:n: not JSON (...)")`, except, with `torn_tail` (the default), a
  bad *final* line with no trailing newline: that is what a run killed mid-append leaves, and
  it is dropped. Input files that wideseek does not append to pass `torn_tail=False`. Values
  are what `json.loads` gives (read through pydantic's faster parser where it agrees).
- `append_jsonl_line(path, line)`: one line appended, flushed and fsynced (a resumable ledger).
- `repair_torn_tail(path)`: cut such a torn final line off before appending again, so that a
  new line is not glued onto it.
- `cache_home()`: where every cache of wideseek lives, `$WIDESEEK_CACHE` else
  `~/.cache/wideseek` (worlds, converted base models, tokenised SFT examples, judge replies,
  web answers). No other module reads `$WIDESEEK_CACHE` or names `~/.cache`.
- `file_sha256(path)`: a file's content digest, read in 1 MiB pieces.

Opening a file that is not there raises the usual OSError: each caller says what the file was
for. This module knows files and JSON, not what the records mean; each format validates its
own records on top of `iter_jsonl`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pydantic_core

from wideseek.errors import DataError

_TAIL_CHUNK = 1 << 16
CACHE_ENV = "WIDESEEK_CACHE"


def cache_home() -> Path:
    """The root of wideseek's caches: `$WIDESEEK_CACHE`, else `~/.cache/wideseek`."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "wideseek"
    return Path(root).expanduser()


def file_sha256(path: str | Path) -> str:
    """The sha256 hex digest of a file's content."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace `path` by `data` atomically (see module docstring)."""
    with atomic_writer(path, binary=True) as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Replace `path` by `text` atomically (see module docstring)."""
    with atomic_writer(path, encoding=encoding) as f:
        f.write(text)


@contextmanager
def atomic_writer(
    path: str | Path, *, binary: bool = False, encoding: str = "utf-8"
) -> Iterator[IO[Any]]:
    """`with atomic_writer(path) as f: f.write(...)`: the streaming form of `atomic_write_text`,
    for content too large to build in memory first. `path` is replaced only if the block ends
    without an exception."""
    path = Path(path)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file next to `path`. Created with mode 0o666 so that the umask applies as for any
    new file (tempfile's mkstemp would make every result private, 0o600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # another writer drew the same name: draw again
            continue


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def share_file(path: str | Path) -> None:
    """Give a file the permissions a plain write would (0644 less the umask), for writers that
    make theirs private (safetensors' save_file: 0600), so a shipped model is readable by all."""
    Path(path).chmod(0o644 & ~_umask())


def atomic_write_dir(
    write: Callable[[Path], object],
    out_dir: str | Path,
    *,
    accept_existing: Callable[[Path], bool] | None = None,
) -> None:
    """Run `write(tmp_dir)`, then put tmp_dir in place of `out_dir` (replaced only on success).

    The one way wideseek replaces a directory (a model, a cache, a world). An old `out_dir` is
    moved into a uniquely named sibling first and deleted once the new one is in, so a reader
    never sees a half-written directory and two writers never share a temporary name. When
    another process puts its own `out_dir` in place between our move and our rename, the
    rename fails (the name is taken by a non-empty directory): that OSError is raised unless
    `accept_existing(out_dir)` says the other writer's copy will do."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))
    aside: Path | None = None
    try:
        tmp.chmod(0o755 & ~_umask())  # mkdtemp makes it private (0700); a model dir is shared
        write(tmp)
        if out_dir.exists():
            prefix = f".{out_dir.name}.old-{os.getpid()}-"
            aside = Path(tempfile.mkdtemp(prefix=prefix, dir=out_dir.parent))
            os.replace(out_dir, aside / "old")
        try:
            os.replace(tmp, out_dir)
        except OSError:
            if not out_dir.exists() and aside is not None:  # put the old one back
                os.replace(aside / "old", out_dir)
            if accept_existing is None or not out_dir.is_dir() or not accept_existing(out_dir):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


def iter_jsonl(
    path: str | Path,
    *,
    torn_tail: bool = True,
    error: type[DataError] = DataError,
    not_json: str = "not JSON",
) -> Iterator[tuple[int, Any]]:
    """`(line_no, value)` per non-blank line of a JSON-lines file (see module docstring).

    `error` and `not_json` let a format keep its own error class and wording
    (`error(f"{path}:{n}: {not_json} (...)")`).
    """
    path = Path(path)
    with path.open("rb") as f:
        yield from parse_jsonl_lines(path, f, torn_tail=torn_tail, error=error, not_json=not_json)


def parse_jsonl_lines(
    path: Path,
    lines: Iterable[bytes],
    *,
    torn_tail: bool = True,
    error: type[DataError] = DataError,
    not_json: str = "not JSON",
) -> Iterator[tuple[int, Any]]:
    """`iter_jsonl` over lines already read (with their newlines), for a caller that also needs
    the bytes themselves (a corpus hashes them in the same pass)."""
    for line_no, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            value = _loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            if torn_tail and not raw.endswith(b"\n"):
                return  # cut inside a multi-byte character
            raise error(f"{path}:{line_no}: not UTF-8 text ({e.reason})") from e
        except json.JSONDecodeError as e:
            if torn_tail and not raw.endswith(b"\n"):
                return  # only the last line can lack its newline
            raise error(f"{path}:{line_no}: {not_json} ({e.msg})") from e
        yield line_no, value


def _loads(text: str) -> Any:
    try:  # pydantic's parser: twice as fast as json's on long lines (token ids)
        return pydantic_core.from_json(text)
    except ValueError:  # json's rules are the reference (it also takes lone surrogates)
        return json.loads(text)


def append_jsonl_line(path: str | Path, line: str) -> None:
    """Append `line` (one JSON document, no newline) and its newline, flushed to the disk."""
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def repair_torn_tail(path: str | Path) -> None:
    """Truncate `path` after its last newline, if it ends without one (a torn last line).

    Reads backwards from the end, so a long ledger is not read whole."""
    path = Path(path)
    if not path.exists() or not path.stat().st_size:
        return
    with path.open("r+b") as f:
        end = f.seek(0, os.SEEK_END)
        pos = end
        while pos > 0:
            start = max(0, pos - _TAIL_CHUNK)
            f.seek(start)
            chunk = f.read(pos - start)
            if pos == end and chunk.endswith(b"\n"):
                return  # intact
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                f.truncate(start + newline + 1)
                break
            pos = start
        else:
            f.truncate(0)  # no newline at all: the only line is torn
        f.flush()
        os.fsync(f.fileno())
