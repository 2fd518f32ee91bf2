"""engine.backend: auto picks llama.cpp only where torch would decode in fp32 on a CPU, the
model's base is a GGUF file and llama-cpp-python is installed; the machine probes are injected."""

from pathlib import Path

import pytest
import torch

from wideseek.llm.local_backend import pick_local_backend
from wideseek.llm.model_dir import GenerationDefaults, RecommendedLimits
from wideseek.llm.resolved_model import ResolvedModel


def model_on(base_spec: str) -> ResolvedModel:
    here = Path("adapter")
    return ResolvedModel(spec=str(here), dir=here, base_dir=here, tokenizer_dir=here,
                         is_adapter=True, base_spec=base_spec, name="m",
                         generation=GenerationDefaults(), limits=RecommendedLimits())  # fmt: skip


@pytest.fixture
def gguf_base(tmp_path) -> ResolvedModel:
    (tmp_path / "base.gguf").write_bytes(b"GGUF")
    return model_on(str(tmp_path / "base.gguf"))


def auto(model, *, torch_uses=("cpu", torch.float32), installed=True, **settings):
    return pick_local_backend("auto", model, torch_would_use=lambda: torch_uses,
                              llama_cpp=lambda: installed, **settings)  # fmt: skip


def test_auto_picks_llama_cpp_where_torch_would_decode_in_fp32_on_a_cpu(gguf_base):
    chosen = auto(gguf_base)
    assert chosen.backend == "llama.cpp" and "no bf16 units" in chosen.reason


@pytest.mark.parametrize(
    ("why", "settings", "says"),
    [
        ("bf16 units", {"torch_uses": ("cpu", torch.bfloat16)}, "bfloat16 on cpu"),
        ("a GPU", {"torch_uses": ("cuda", torch.bfloat16)}, "bfloat16 on cuda"),
        ("a dtype asked", {"dtype": "fp32"}, "dtype fp32 asked"),
        ("batch invariance asked", {"batch_invariant": True}, "batch invariance"),
        ("not installed", {"installed": False}, "install the [llamacpp] extra"),
    ],
)
def test_auto_keeps_torch(gguf_base, why, settings, says):
    chosen = auto(gguf_base, **settings)
    assert chosen.backend == "torch" and says in chosen.reason, why


def test_auto_keeps_torch_for_a_model_whose_base_is_no_gguf_file(tmp_path):
    chosen = auto(model_on(str(tmp_path / "hf-dir")))
    assert chosen.backend == "torch" and "not a GGUF file" in chosen.reason
    missing = auto(model_on(str(tmp_path / "gone.gguf")))
    assert missing.backend == "torch"


@pytest.mark.parametrize("asked", ["torch", "llama.cpp"])
def test_a_backend_named_is_taken_as_asked(gguf_base, asked):
    assert auto(gguf_base, installed=False).backend == "torch"
    chosen = pick_local_backend(asked, gguf_base, torch_would_use=lambda: ("cuda", torch.bfloat16))
    assert chosen.backend == asked


def test_the_cli_says_which_engine_auto_picked_and_why(monkeypatch, capsys):
    from wideseek.cli.common import note_default_engine
    from wideseek.config import Config
    from wideseek.llm import local_backend

    monkeypatch.delenv("WIDESEEK_MODEL", raising=False)
    monkeypatch.setattr(local_backend, "torch_dtype_on_this_machine",
                        lambda: ("cpu", torch.bfloat16))  # fmt: skip
    note_default_engine(Config())  # the shipped model
    assert "engine.backend auto → torch: it decodes in bfloat16 on cpu" in capsys.readouterr().err
    note_default_engine(Config.model_validate({"engine": {"backend": "torch"}}))
    assert "auto" not in capsys.readouterr().err  # asked for: nothing to explain
