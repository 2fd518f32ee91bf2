"""labelled_loss: the loss and gradients of `model(**batch).loss`, projecting only labelled
positions onto the vocabulary (train/token_loss.py)."""

from __future__ import annotations

import pytest
import torch

from tiny_lm import make_tiny_lm
from wideseek.train.sft import collate
from wideseek.train.sft_data import IGNORE, SFTExample
from wideseek.train.token_loss import labelled_loss, right_padded
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


def forward_kwargs(model, data) -> tuple[torch.Tensor, dict]:
    """labelled_loss(model, data) and the keyword arguments the model's forward was called with."""
    seen: dict = {}
    hook = model.register_forward_pre_hook(
        lambda _module, _args, kwargs: seen.update(kwargs), with_kwargs=True
    )
    try:
        return labelled_loss(model, data), seen
    finally:
        hook.remove()


def test_a_right_padded_batch_runs_causal_without_its_mask(tiny):
    # the mask would make torch's CPU attention score the masked upper triangle too
    trainable = load_trainable(str(tiny), dtype="fp32")
    data = batch(trainable.tokenizer.pad_token_id, len(trainable.tokenizer))
    assert right_padded(data["attention_mask"]) and not data["attention_mask"].all()
    loss, kwargs = forward_kwargs(trainable.model, data)
    assert "attention_mask" not in kwargs
    assert torch.allclose(loss, trainable.model(**data).loss, atol=1e-6)


def test_a_left_padded_batch_keeps_its_mask(tiny):
    trainable = load_trainable(str(tiny), dtype="fp32")
    model = trainable.model
    data = batch(trainable.tokenizer.pad_token_id, len(trainable.tokenizer))
    # move each row's padding to the front (labels with it): the mask now matters
    for row in range(data["input_ids"].shape[0]):
        n = int(data["attention_mask"][row].sum())
        for name in ("input_ids", "labels", "attention_mask"):
            data[name][row] = torch.roll(data[name][row], data[name].shape[1] - n)
    assert not right_padded(data["attention_mask"])
    loss, kwargs = forward_kwargs(model, data)
    assert torch.equal(kwargs["attention_mask"], data["attention_mask"])
    assert torch.allclose(loss, model(**data).loss, atol=1e-6)


def test_a_label_in_the_padding_keeps_the_mask(tiny):
    # without the mask the padding would attend to itself and its labelled logit would change
    trainable = load_trainable(str(tiny), dtype="fp32")
    model = trainable.model
    data = batch(trainable.tokenizer.pad_token_id, len(trainable.tokenizer))
    row = int(data["attention_mask"].sum(dim=1).argmin())
    data["labels"][row, -1] = 7  # the last position: padding in the shortest row
    loss, kwargs = forward_kwargs(model, data)
    assert "attention_mask" in kwargs
    assert torch.allclose(loss, model(**data).loss, atol=1e-6)


def test_right_padded():
    assert right_padded(torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0]]))
    assert right_padded(torch.tensor([[True, False]]))
    assert not right_padded(torch.tensor([[1, 1, 1], [0, 1, 1]]))
    assert not right_padded(torch.tensor([[1, 0, 1]]))
