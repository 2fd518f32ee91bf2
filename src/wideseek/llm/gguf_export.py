"""A model whose base is a GGUF file, written back to one GGUF file with its adapter merged.

Contract: `export_gguf(model, out, weights="q8_0")` writes `out` and returns an `ExportSummary`,
for a model spec whose base came from a GGUF file (the default SmolLM2 base, or any `.gguf` file
that `resolve_model` converted): the base itself or a LoRA adapter on it. llama.cpp and what
builds on it (its server, Ollama, LM Studio, `LlamaCppEngine`) then run the trained model.
- The source file's metadata is copied (architecture, hyper-parameters, the tokenizer), except
  the name (the model's own), the chat template (the model's tokenizer's: the project's format)
  and the file type.
- A tensor the merge left unchanged (embeddings, norms, any layer the adapter did not touch) is
  copied byte for byte, so the base exported alone is the source file's tensors exactly. A
  changed one is written as `weights`: "q8_0" (llama.cpp's fast CPU type, ~0.4% error per
  weight), "f16" or "f32" (exact to the merge). llama.cpp keeps a LLaMA model's query and key
  rows in its own rotary order, so those are permuted back as llama.cpp's own converter does.
- Models whose base is a Hugging Face directory are refused in one line: their tokenizer would
  need llama.cpp's own converter (convert_hf_to_gguf.py).
- `out` appears whole or not at all (written beside it, then renamed).
- `write_gguf(merged, model, out, weights)` does the same from weights already merged in memory
  (an RL policy's current version, train/rl/llamacpp_sampler.py), without reading the adapter.

This module knows GGUF files and the merge; not engines or agents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wideseek.llm.base_model import DEFAULT_SPEC, INSTALL_GGUF, default_gguf_path
from wideseek.llm.model_dir import ModelDirError, first_line
from wideseek.llm.model_loading import load_causal_lm, load_tokenizer
from wideseek.llm.resolved_model import ModelSpec, ResolvedModel, resolve_model

ExportWeights = Literal["q8_0", "f16", "f32"]
EXPORT_WEIGHTS: tuple[ExportWeights, ...] = ("q8_0", "f16", "f32")


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    source: Path  # the GGUF file the base came from
    copied: int  # tensors copied byte for byte
    merged: int  # tensors the adapter changed, written as `weights`
    bytes: int


class GGUFExportError(ModelDirError):
    """A model that cannot be exported; the message says why and what to do."""


def source_gguf(model: ResolvedModel) -> Path:
    """The GGUF file `model`'s base was converted from."""
    spec = model.base_spec
    if spec == DEFAULT_SPEC:
        return default_gguf_path()
    path = Path(spec)
    if path.suffix.lower() != ".gguf":
        raise GGUFExportError(
            f"{model.dir}: its base {spec} is not a GGUF file; export needs a model whose base "
            "is one (the default); convert others with llama.cpp's convert_hf_to_gguf.py"
        )
    if not path.is_file():
        raise GGUFExportError(f"{model.dir}: its base GGUF file {path} is missing")
    return path


def export_gguf(
    model: ModelSpec, out: str | os.PathLike[str], weights: ExportWeights = "q8_0"
) -> ExportSummary:
    """Write `model` (merged) as one GGUF file at `out` (see the module docstring)."""
    _check_weights(weights)
    _gguf()  # before the model loads: a missing package is said at once
    import torch

    resolved = resolve_model(model)
    source = source_gguf(resolved)
    return write_gguf(load_causal_lm(resolved, dtype=torch.float32), resolved, out, weights,
                      source=source)  # fmt: skip


def write_gguf(
    merged: Any,
    model: ResolvedModel,
    out: str | os.PathLike[str],
    weights: ExportWeights = "q8_0",
    *,
    source: Path | None = None,
    tokenizer: Any = None,
) -> ExportSummary:
    """`merged` (a plain transformers model: `model` with any adapter merged into it, in
    memory, e.g. an RL policy's current weights) as one GGUF file at `out`, with the metadata
    of the GGUF file `model`'s base came from (`source`: that file, found when None) and the
    chat template of `tokenizer` (None: `model`'s own)."""
    _check_weights(weights)
    gguf = _gguf()
    source = source or source_gguf(model)
    reader = gguf.GGUFReader(source)
    arch = str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    state = {k: v.detach().float().cpu().numpy() for k, v in merged.state_dict().items()}
    ours = _gguf_names(gguf, arch, merged.config.num_hidden_layers, state)
    template = getattr(tokenizer or load_tokenizer(model), "chat_template", None)
    plan = []  # (tensor, None to copy it, or the merged weight in llama.cpp's layout)
    for tensor in reader.tensors:
        hf_name = ours.get(tensor.name)
        if hf_name is None:
            raise GGUFExportError(f"{source}: tensor {tensor.name} has no weight in the model")
        weight = _gguf_layout(hf_name, state[hf_name], merged.config)
        plan.append((tensor, None if _unchanged(gguf, tensor, weight) else weight))
    changed = sum(weight is not None for _, weight in plan)

    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        writer = gguf.GGUFWriter(tmp, arch=arch, endianess=reader.endianess)
        _copy_metadata(gguf, reader, writer, model.name, template, weights if changed else None)
        for tensor, weight in plan:
            if weight is None:
                writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
            else:
                _add_weight(gguf, writer, tensor.name, weight, weights)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise GGUFExportError(f"{out}: cannot write ({first_line(e)})") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportSummary(out, source, len(plan) - changed, changed, out.stat().st_size)


def _check_weights(weights: str) -> None:
    if weights not in EXPORT_WEIGHTS:
        choices = ", ".join(EXPORT_WEIGHTS)
        raise GGUFExportError(f"weights must be one of {choices}, not {weights!r}")


def _gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise GGUFExportError(f"exporting to GGUF needs the gguf package: {INSTALL_GGUF}") from None
    return gguf


def _gguf_names(gguf: Any, arch: str, n_layers: int, state: dict[str, Any]) -> dict[str, str]:
    """GGUF tensor name -> the merged model's weight name (gguf's own name map)."""
    arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    names = gguf.get_tensor_name_map(arch_id, n_layers)
    mapped = {}
    for hf_name in state:
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is not None:
            mapped[name] = hf_name
    return mapped


def _gguf_layout(hf_name: str, weight: Any, config: Any) -> Any:
    """llama.cpp's order of a LLaMA query / key weight: each head's rotary halves interleaved,
    the permutation llama.cpp's converter applies (transformers undoes it when loading)."""
    heads = {"q_proj": config.num_attention_heads, "k_proj": config.num_key_value_heads}
    for part, n_head in heads.items():
        if hf_name.endswith(f"{part}.weight"):
            rows = weight.shape[0]
            return (
                weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
                .swapaxes(1, 2)
                .reshape(weight.shape)
            )
    return weight


def _unchanged(gguf: Any, tensor: Any, weight: Any) -> bool:
    """Whether the merged weight is exactly the source tensor's values (the base was converted
    from them, so a weight no adapter touched compares equal)."""
    import numpy as np

    values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    return values.shape == weight.shape and np.array_equal(values, weight)


def _add_weight(gguf: Any, writer: Any, name: str, weight: Any, weights: ExportWeights) -> None:
    import numpy as np

    kind = gguf.GGMLQuantizationType
    if weights == "q8_0" and weight.shape[-1] % gguf.GGML_QUANT_SIZES[kind.Q8_0][0] == 0:
        data = gguf.quants.quantize(weight.astype(np.float32), kind.Q8_0)
        writer.add_tensor(name, data, raw_dtype=kind.Q8_0)  # shape read from the bytes
    elif weights == "f32" or weight.ndim == 1:  # llama.cpp keeps norms and biases in f32
        writer.add_tensor(name, weight.astype(np.float32))
    else:
        writer.add_tensor(name, weight.astype(np.float16))


def _copy_metadata(
    gguf: Any,
    reader: Any,
    writer: Any,
    name: str,
    template: str | None,
    weights: ExportWeights | None,
) -> None:
    """The source's metadata with the model's name and chat template; the file type of
    `weights` (None: no tensor changed, the source's own)."""
    keys = gguf.Keys
    replaced = {keys.General.ARCHITECTURE, keys.General.NAME}
    if weights:
        replaced.add(keys.General.FILE_TYPE)
    if template:
        replaced.add(keys.Tokenizer.CHAT_TEMPLATE)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in replaced:
            continue  # the writer's own header fields, and what is set below
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub_type)
    writer.add_name(name)
    if weights:
        types = gguf.LlamaFileType
        file_type = {"q8_0": types.MOSTLY_Q8_0, "f16": types.MOSTLY_F16, "f32": types.ALL_F32}
        writer.add_file_type(file_type[weights])
    if template:
        writer.add_chat_template(template)
