"""The teacher-forced probe scores fields by whether every one of their tokens is predicted."""

from types import SimpleNamespace

import torch
from transformers import AutoTokenizer

from test_sft_data import runs
from wideseek.train.copy_probe import teacher_forced_metrics
from wideseek.train.sft_data import messages_example
from wideseek.types import Message


class Oracle(torch.nn.Module):
    """Predicts the true next token, except at the positions listed in `wrong`."""

    def __init__(self, vocab: int, wrong: set[int] = frozenset()) -> None:
        super().__init__()
        self.vocab, self.wrong = vocab, wrong
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask):
        nxt = torch.roll(input_ids, -1, dims=1)  # (B, T): token t+1 at position t
        for t in self.wrong:
            nxt[:, t - 1] = 0  # the prediction of token t
        return SimpleNamespace(logits=torch.nn.functional.one_hot(nxt, self.vocab).float())


ROW = "| Lima | 10,092,000 |"


def example(tokenizer):
    page = "Lima is the capital of Peru. Its population is 10,092,000."
    messages = [
        Message(role="user", content=f"{page}\nCapital and population of Peru?"),
        Message(
            role="assistant", content="| Capital | Population |\n|---|---|\n| Lima | 10,092,000 |"
        ),
    ]
    return messages_example(tokenizer, messages, [], role="copy")


def test_perfect_and_partly_wrong_predictions(tmp_path):
    from tiny_lm import make_tiny_lm

    tokenizer = AutoTokenizer.from_pretrained(make_tiny_lm(tmp_path))
    ex = example(tokenizer)
    vocab = len(tokenizer)
    perfect = teacher_forced_metrics(Oracle(vocab), tokenizer, [ex])
    assert perfect["token_acc"] == perfect["copy_acc"] == perfect["copy_token_acc"] == 1.0
    assert perfect["copy_fields"] == perfect["fields"] == 2  # Lima, 10,092,000
    # one wrong token inside the number: that field fails, Lima still counts
    ((start, end),) = runs(ex.labels)
    text = tokenizer.decode(ex.input_ids[start:end])
    number_at = next(
        t
        for t in range(start, end)
        if tokenizer.decode(ex.input_ids[start : t + 1]).endswith("092")
    )
    partly = teacher_forced_metrics(Oracle(vocab, {number_at}), tokenizer, [ex])
    assert "10,092,000" in text and partly["copy_acc"] == 0.5
    assert 0.5 < partly["copy_token_acc"] < 1.0 and partly["token_acc"] < 1.0
