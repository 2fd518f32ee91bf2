"""labelled_loss: the loss and gradients of `model(**batch).loss`, projecting only labelled
positions onto the vocabulary (train/token_loss.py)."""

from __future__ import annotations

import pytest
import torch

from tiny_lm import make_tiny_lm
from wideseek.train.sft import collate
from wideseek.train.sft_data import IGNORE, SFTExample
from wideseek.train.token_loss import labelled_loss
from wideseek.train.trainable import LoraSettings, load_trainable


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm"))


def batch(pad_id: int, vocab: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    examples = []
    for length, labelled in ((40, [(10, 18), (30, 40)]), (25, [(5, 25)]), (33, [])):
        ids = torch.randint(5, vocab, (length,), generator=gen).tolist()
        labels = [IGNORE] * length
        for lo, hi in labelled:
            labels[lo:hi] = ids[lo:hi]
        examples.append(SFTExample(input_ids=ids, labels=labels, role="lead", task_id="t"))
    return collate(examples, pad_id)


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("lora", [None, LoraSettings(r=4, alpha=8)])
def test_same_loss_and_gradients_as_the_full_projection(tiny, lora):
    trainable = load_trainable(str(tiny), lora=lora, dtype="fp32")
    model = trainable.model.train()
    data = batch(trainable.tokenizer.pad_token_id, len(trainable.tokenizer))
    torch.manual_seed(0)
    reference = model(**data).loss
    reference.backward()
    expected = grads(model)
    model.zero_grad()
    torch.manual_seed(0)
    loss = labelled_loss(model, data)
    loss.backward()
    assert torch.allclose(loss, reference, atol=1e-6)
    got = grads(model)
    assert got.keys() == expected.keys() and expected
    for name, g in expected.items():
        assert torch.allclose(got[name], g, atol=1e-6, rtol=1e-4), name


def test_a_batch_with_nothing_labelled_is_a_zero_loss_with_gradients(tiny):
    trainable = load_trainable(str(tiny), lora=LoraSettings(r=4, alpha=8), dtype="fp32")
    data = batch(trainable.tokenizer.pad_token_id, len(trainable.tokenizer))
    data["labels"][:] = IGNORE
    loss = labelled_loss(trainable.model, data)
    loss.backward()
    assert float(loss.detach()) == 0.0
