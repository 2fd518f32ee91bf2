"""Exporting a model on the default GGUF base back to one GGUF file: the bare base gives the
source's tensors byte for byte; an adapter's merge reads back (through transformers' own GGUF
loader, which undoes llama.cpp's query/key order) as the merged model; q8_0 rounds only the
weights the adapter changed; models on other bases are refused in one line.

The converted default base comes from the user's cache (tests/conftest.py); each GGUF read by
transformers parses 49k tokens of metadata (~20 s), so the file is read once.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from lora_adapters import save_random_adapter
from tiny_lm import make_tiny_lm
from wideseek.cli import main
from wideseek.llm.base_model import default_gguf_path, portable_base_spec, resolve_base_model
from wideseek.llm.chat_template import CHAT_TEMPLATE
from wideseek.llm.gguf_export import GGUFExportError, export_gguf
from wideseek.llm.model_loading import load_causal_lm

PROMPT = torch.tensor([[1, 4093, 198, 6004, 2, 28, 1116, 314, 260, 3575]])


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> Path:
    """A LoRA adapter on the default base that visibly changes its outputs (random A and B)."""
    base = resolve_base_model("default")
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    targets = ["q_proj", "k_proj", "down_proj"]  # both rotary permutations, and one without
    save_random_adapter(base, out, portable_base_spec(base), targets)
    return out


def tensors(path: Path) -> dict[str, gguf.ReaderTensor]:
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def test_the_bare_base_exports_to_its_own_tensors(tmp_path):
    summary = export_gguf("default", tmp_path / "base.gguf", weights="f32")
    assert (summary.copied, summary.merged) == (272, 0)
    source, ours = tensors(default_gguf_path()), tensors(summary.path)
    assert source.keys() == ours.keys()
    for name, tensor in source.items():
        assert ours[name].tensor_type == tensor.tensor_type, name
        assert np.array_equal(ours[name].data, tensor.data), name
    fields = gguf.GGUFReader(summary.path).fields
    assert fields["tokenizer.chat_template"].contents() == CHAT_TEMPLATE
    source_fields = gguf.GGUFReader(default_gguf_path()).fields
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "general.file_type"):
        assert fields[key].contents() == source_fields[key].contents(), key


def test_a_merged_adapter_reads_back_as_the_merged_model(adapter, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged.gguf"
    with pytest.raises(SystemExit) as exit_:
        main(["train", "export-gguf", str(out), "--model", str(adapter), "--weights", "f32"])
    assert exit_.value.code == 0
    # 30 layers x 3 adapted weights
    assert "90 merged weights as f32, 182 copied" in capsys.readouterr().out
    fields = gguf.GGUFReader(out).fields
    assert fields["general.file_type"].contents() == gguf.LlamaFileType.ALL_F32
    merged = load_causal_lm(adapter, dtype=torch.float32).eval()
    read_back = AutoModelForCausalLM.from_pretrained(
        str(out.parent), gguf_file=out.name, dtype=torch.float32
    ).eval()
    base = load_causal_lm("default", dtype=torch.float32).eval()
    with torch.no_grad():
        want, got, before = (m(PROMPT).logits for m in (merged, read_back, base))
    assert (want - before).abs().max() > 0.1  # the adapter does change the outputs
    assert torch.allclose(got, want, atol=1e-4)


def test_q8_0_rounds_only_the_changed_weights(adapter, tmp_path):
    summary = export_gguf(adapter, tmp_path / "merged.gguf")
    assert (summary.copied, summary.merged) == (182, 90)
    ours, source = tensors(summary.path), tensors(default_gguf_path())
    merged = load_causal_lm(adapter, dtype=torch.float32).state_dict()
    down = merged["model.layers.3.mlp.down_proj.weight"].numpy()  # not permuted
    tensor = ours["blk.3.ffn_down.weight"]
    assert tensor.tensor_type == gguf.GGMLQuantizationType.Q8_0
    values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    # Q8_0: blocks of 32 sharing one f16 scale, max |w| / 127: an error of half a step, plus
    # the scale's own f16 rounding (up to 127 x 2^-11 of a step)
    step = np.abs(down.reshape(-1, 32)).max(axis=1, keepdims=True) / 127
    error = np.abs(values - down).reshape(-1, 32)
    assert np.all(error <= step * 0.57) and error.max() > 0
    for name in ("blk.3.ffn_up.weight", "blk.3.attn_v.weight", "token_embd.weight"):
        assert ours[name].tensor_type == source[name].tensor_type, name
        assert np.array_equal(ours[name].data, source[name].data), name


def test_a_model_on_another_base_is_refused_in_one_line(tmp_path):
    model = make_tiny_lm(tmp_path)
    with pytest.raises(GGUFExportError, match=r"is not a GGUF file.*convert_hf_to_gguf") as info:
        export_gguf(model, tmp_path / "x.gguf")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "x.gguf").exists()


def test_an_unknown_weight_type_is_refused(tmp_path):
    with pytest.raises(GGUFExportError, match="weights must be one of q8_0, f16, f32"):
        export_gguf("default", tmp_path / "x.gguf", weights="q4")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # nothing written
