"""Int8 decode weights: exact outside decode steps, close inside, chosen by the engine on a CPU."""

import pytest
import torch
from torch import nn

from tiny_lm import make_tiny_lm
from wideseek.llm.engine import EngineError, GenerateRequest, SamplingParams
from wideseek.llm.int8_decode import Int8DecodeLinear, decode_step, use_int8_for_decode
from wideseek.llm.local import LocalEngine, token_logprobs


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int8_path_only_inside_decode_steps_of_few_rows(dtype):
    torch.manual_seed(0)
    linear = nn.Linear(64, 48, bias=True).to(dtype)
    wrapped = Int8DecodeLinear(linear, max_rows=4)
    few, many = torch.randn(1, 3, 64, dtype=dtype), torch.randn(6, 1, 64, dtype=dtype)
    assert torch.equal(wrapped(few), linear(few))  # outside a decode step: the exact weights
    with decode_step():
        assert torch.equal(wrapped(many), linear(many))  # 6 rows > 4: the exact weights
        approx = wrapped(few)
    exact = linear(few).float()
    assert not torch.equal(approx.float(), exact)  # the int8 kernel did run
    # per-channel rounding: |w - w8| <= scale / 2 for every weight, so the error is bounded
    bound = (linear.weight.float().abs().amax(1) / 254) * few.float().abs().sum(-1, keepdim=True)
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
    assert torch.all((approx.float() - exact).abs() <= bound + tol * exact.abs() + tol)


def test_every_linear_is_wrapped_lm_head_included(model_dir):
    engine = LocalEngine(model_dir, device="cpu", int8_decode="off")
    count = sum(type(m) is nn.Linear for m in engine.model.modules())
    assert use_int8_for_decode(engine.model) == count
    assert isinstance(engine.model.lm_head, Int8DecodeLinear)
    inner = {id(m.linear) for m in engine.model.modules() if isinstance(m, Int8DecodeLinear)}
    assert inner == {id(m) for m in engine.model.modules() if type(m) is nn.Linear}


async def test_engine_with_int8_decode_reports_logprobs_of_its_own_tokens(model_dir):
    engine = LocalEngine(model_dir, device="cpu", dtype="fp32", int8_decode="auto")
    assert engine.int8_decode  # auto: on for a CPU engine that loaded its own model
    prompt = [5, 6, 7, 8, 9]
    params = SamplingParams(temperature=0, max_tokens=12)
    out = await engine.generate(GenerateRequest(prompt_token_ids=prompt, sampling=params))
    ids = torch.tensor([prompt + out.token_ids])
    logits = engine.model(ids).logits[0, len(prompt) - 1 : -1]  # exact weights (no decode step)
    exact = token_logprobs(logits, torch.tensor(out.token_ids), 1.0)
    assert torch.allclose(torch.tensor(out.logprobs), exact, atol=0.05)


def test_shared_models_keep_their_weights_and_bad_settings_fail(model_dir):
    engine = LocalEngine(model_dir, device="cpu", int8_decode="off")
    shared = LocalEngine(model_dir, loaded=(engine.model, engine.tokenizer), device="cpu")
    assert not shared.int8_decode  # a trainer's policy changes under it: no stale copies
    with pytest.raises(EngineError, match="auto, on or off"):
        LocalEngine(model_dir, device="cpu", int8_decode="yes")
    on = LocalEngine(model_dir, device="cpu", int8_decode="on")
    with pytest.raises(EngineError, match="int8_decode='off'"):
        on.load_state_dict(engine.model.state_dict())
