"""A model spec is resolved once into one value that every loader and engine takes: its
directory, its base, adapter or not, its name and recommendations read from the directory."""

from __future__ import annotations

import ast
import json
import shutil
import warnings
from pathlib import Path

import peft
import pytest

from tiny_lm import make_tiny_lm
from wideseek.cli import main
from wideseek.llm import resolved_model
from wideseek.llm.local import LocalEngine
from wideseek.llm.model_dir import GenerationDefaults, ModelDirError, RecommendedLimits
from wideseek.llm.model_loading import load_causal_lm, quiet_peft
from wideseek.llm.resolved_model import resolve_model
from wideseek.train.trainable import load_trainable

LLM = Path(resolved_model.__file__).parent


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm"))


@pytest.fixture(scope="module")
def adapter(base, tmp_path_factory) -> Path:
    """An adapter with no tokenizer and no generation config of its own."""
    out = tmp_path_factory.mktemp("adapter") / "my-adapter"
    config = peft.LoraConfig(r=2, target_modules=["q_proj"])
    with quiet_peft():
        model = peft.get_peft_model(load_causal_lm(base), config)
    model.peft_config["default"].base_model_name_or_path = str(base)
    model.save_pretrained(out, save_embedding_layers=False)
    return out


def with_files(model_dir: Path, tmp_path: Path, **files: dict) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    for name, content in files.items():
        path = copy / name.replace("_json", ".json")
        old = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps({**old, **content}))
    return copy


def test_a_full_model_dir(base, tmp_path):
    model = with_files(base, tmp_path, generation_config_json={"do_sample": False})
    resolved = resolve_model(model)
    assert (resolved.dir, resolved.base_dir, resolved.tokenizer_dir) == (model, model, model)
    assert not resolved.is_adapter and resolved.base_spec == str(model)
    assert resolved.name == "copy"  # no wideseek.json: the directory's name
    assert resolved.generation == GenerationDefaults(temperature=0.0)
    assert resolved.limits == RecommendedLimits()
    assert resolve_model(resolved) is resolved  # a resolved model passes through


def test_an_adapter_takes_its_base_tokenizer_and_generation_config(base, adapter):
    resolved = resolve_model(adapter)
    assert resolved.is_adapter and resolved.dir == adapter
    assert resolved.base_dir == resolved.tokenizer_dir == base
    assert resolved.base_spec == str(base)
    assert resolved.name == "my-adapter"
    assert resolved.generation == resolve_model(base).generation


def test_name_and_limits_come_from_wideseek_json(base, tmp_path):
    limits = {"lead_turns": 4, "subagent_turns": 5, "max_response_tokens": 256}
    model = with_files(base, tmp_path, wideseek_json={"name": "my-model", "limits": limits})
    resolved = resolve_model(model)
    assert resolved.name == "my-model"
    assert resolved.limits.given() == limits
    engine = LocalEngine(resolved)
    assert engine.model_name == "my-model"
    # the limits win over generation_config.json's response cap; context never above the model's
    recommended = engine.generation_defaults()
    assert recommended["max_response_tokens"] == 256 and recommended["lead_turns"] == 4
    assert recommended["context_length"] == engine.context_length


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "unreadable wideseek.json"),
        ('{"limits": {"lead_turn": 4}}', "limits.lead_turn: Extra inputs"),
        ('{"limits": {"lead_turns": 0}}', "limits.lead_turns: Input should be greater"),
    ],
)
def test_a_bad_wideseek_json_is_one_line_everywhere(base, tmp_path, capsys, content, message):
    model = with_files(base, tmp_path)
    (model / "wideseek.json").write_text(content)
    with pytest.raises(ModelDirError, match=message) as e:
        resolve_model(model)
    assert "\n" not in str(e.value)
    argv = ["ask", "Capital of Peru?", "--model", str(model), "--out", str(tmp_path / "t.json")]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--no-live"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {model / 'wideseek.json'}: ") and message in err[-1]


def test_every_load_resolves_its_spec_once(base, adapter, monkeypatch):
    calls: list[str] = []
    real = resolved_model.resolve_base_model

    def counting(spec, cache_dir=None):
        calls.append(str(spec))
        return real(spec, cache_dir)

    monkeypatch.setattr(resolved_model, "resolve_base_model", counting)
    LocalEngine(adapter, dtype="fp32")
    assert calls == [str(adapter), str(base)]  # the adapter, then its base: once each
    calls.clear()
    load_trainable(adapter, dtype="fp32")
    assert calls == [str(adapter), str(base)]


def test_wrapping_or_loading_an_adapter_reports_no_peft_deprecation_noise(base, adapter):
    from wideseek.train.trainable import LoraSettings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        load_trainable(base, lora=LoraSettings(r=2), dtype="fp32")  # peft wraps the model
        load_causal_lm(adapter, merge=False)  # peft loads an adapter, trainable
        load_causal_lm(adapter)  # and merged
    assert not [w for w in seen if "is_gradient_checkpointing" in str(w.message)]


def test_the_model_modules_import_downward_only():
    """model_dir (files) <- base_model (GGUF) <- resolved_model <- model_loading: no cycle."""

    def imported(module: str) -> set[str]:
        tree = ast.parse((LLM / f"{module}.py").read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    above = {"wideseek.llm.base_model", "wideseek.llm.resolved_model", "wideseek.llm.model_loading"}
    assert not imported("model_dir") & above
    assert not imported("base_model") & above
    assert "wideseek.llm.model_loading" not in imported("resolved_model")
