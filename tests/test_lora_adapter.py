"""A PEFT LoRA adapter directory loads like a model directory: its base is resolved from the
spec it records, the adapter is merged, and the merged model computes what PEFT's does."""

from __future__ import annotations

import json
import shutil
import sys

import peft
import pytest
import torch

from lora_adapters import save_random_adapter
from tiny_lm import make_tiny_lm
from wideseek.llm.model_dir import ModelDirError, require_model_dir
from wideseek.llm.model_loading import load_causal_lm, load_tokenizer
from wideseek.llm.resolved_model import resolve_model


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm"))


IDS = torch.tensor([[5, 17, 42, 99, 3, 250, 7, 11]])


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def test_a_merged_adapter_computes_what_peft_computes(base, tmp_path):
    unmerged = save_random_adapter(base, tmp_path / "adapter", str(base))
    assert require_model_dir(tmp_path / "adapter") == tmp_path / "adapter"
    merged = load_causal_lm(tmp_path / "adapter").eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert torch.allclose(logits(merged), logits(unmerged), atol=1e-5)
    assert not torch.allclose(logits(merged), logits(load_causal_lm(base).eval()), atol=1e-3)
    kept = load_causal_lm(tmp_path / "adapter", merge=False)
    assert isinstance(kept, peft.PeftModel)
    assert any(p.requires_grad for name, p in kept.named_parameters() if "lora_" in name)
    # No tokenizer in the adapter dir: the base's is used.
    assert load_tokenizer(tmp_path / "adapter").get_vocab() == load_tokenizer(base).get_vocab()


def test_a_relative_base_is_found_beside_the_adapter(base, tmp_path):
    shutil.copytree(base, tmp_path / "base")
    save_random_adapter(tmp_path / "base", tmp_path / "adapter", "../base")
    assert resolve_model(tmp_path / "adapter").base_dir == tmp_path / "adapter" / "../base"
    assert load_causal_lm(tmp_path / "adapter").config.num_hidden_layers == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"base_model_name_or_path": None}, "records no base_model_name_or_path"),
        ({"base_model_name_or_path": "/nowhere/base"}, "no such base model"),
    ],
)
def test_a_bad_adapter_config_is_one_line(base, tmp_path, edit, message):
    save_random_adapter(base, tmp_path / "adapter", str(base))
    path = tmp_path / "adapter" / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))
    with pytest.raises(ModelDirError, match=message) as e:
        load_causal_lm(tmp_path / "adapter")
    assert "\n" not in str(e.value)


def test_torn_adapter_weights_are_one_line(base, tmp_path):
    save_random_adapter(base, tmp_path / "adapter", str(base))
    (tmp_path / "adapter" / "adapter_model.safetensors").write_text("not safetensors")
    with pytest.raises(ModelDirError, match="cannot load adapter") as e:
        load_causal_lm(tmp_path / "adapter")
    assert "\n" not in str(e.value)


def test_a_missing_peft_is_one_line_with_the_install_command(base, tmp_path, monkeypatch):
    save_random_adapter(base, tmp_path / "adapter", str(base))
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft -> ImportError
    with pytest.raises(ModelDirError, match=r"needs peft: pip install peft$"):
        load_causal_lm(tmp_path / "adapter")


def test_hub_kernels_stay_off(base, monkeypatch):
    """transformers 5.x fetches kernels from the Hub when a model loads on CUDA (offline:
    "kernels-community/rotary is not available in the local cache"); wideseek never asks."""
    from transformers import AutoModelForCausalLM

    seen: dict = {}
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    load_causal_lm(base)
    assert seen["use_kernels"] is False
