"""Teacher-forced probe of a model on held-out examples: loss, token accuracy, copy accuracy.

End-to-end dev evaluation runs whole agents and is slow on CPU; this probe is one forward pass
per batch, so it can be measured often along training. On each assistant turn of an example
(a contiguous run of labels, see sft_data.py) it finds the *fields* the agent writes — string
values in tool-call arguments, cells of markdown table rows, `\\boxed{}` answers, and in a
report (world/oracle/text.py) each entity and value of "ref — title: value; ..." lines and
each "- name" list item — and counts a
field right when greedy argmax predicts every one of its tokens given the true prefix. A
*copy* field is one whose text already occurs in what the agent read before that turn: the
skill a small model trained from scratch learns last (a value must be copied from a page into
a call or a table).

`teacher_forced_metrics(model, tokenizer, examples)` returns loss (token mean over labels),
token_acc, fields, field_acc, copy_fields, copy_acc (fields entirely right) and copy_token_acc
(tokens of copy fields right: partial credit, which moves before copy_acc does).

It knows token examples and text formats, not agents or training.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from wideseek.llm.chat_template import END_OF_TURN
from wideseek.train.sft import collate, make_batches
from wideseek.train.sft_data import IGNORE, SFTExample

_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_TABLE_SEPARATOR = re.compile(r"^\|?[\s:|-]+\|?$")
# a report line: "ref — title: value; title: value", or a list item "- name"
_REPORT_CELL = re.compile(r"^(.+?) — |(?<=— |; )[^:;\n]+: ([^;\n]+)|^- (.+)$")


def _string_leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _string_leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _string_leaves(v)


def field_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the values an assistant turn writes (see module docstring)."""
    spans: list[tuple[int, int]] = []
    for call in _TOOL_CALL.finditer(text):
        try:
            arguments = json.loads(call.group(1)).get("arguments", {})
        except (ValueError, AttributeError):
            continue  # a malformed call has no fields to score
        cursor = call.start(1)
        for value in _string_leaves(arguments):
            quoted = json.dumps(value, ensure_ascii=False)
            at = text.find(quoted, cursor, call.end(1))
            if at >= 0 and value.strip():
                spans.append((at + 1, at + len(quoted) - 1))
                cursor = at + len(quoted)
    header_seen = False
    pos = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("|") and not _TABLE_SEPARATOR.match(stripped):
            if header_seen:
                start = pos + line.index("|") + 1
                for cell in stripped.strip("|").split("|"):
                    lead = len(cell) - len(cell.lstrip())
                    if cell.strip():
                        spans.append((start + lead, start + lead + len(cell.strip())))
                    start += len(cell) + 1
            header_seen = True
        elif not stripped.startswith("|"):
            header_seen = False
        pos += len(line)
    spans += [m.span(1) for m in _BOXED.finditer(text) if m.group(1).strip()]
    for line in re.finditer(r"^.+ — .+$|^- .+$", text, re.M):
        for m in _REPORT_CELL.finditer(line.group()):
            group = next(g for g in (1, 2, 3) if m.group(g) is not None)
            spans.append((line.start() + m.start(group), line.start() + m.end(group)))
    return sorted(spans)


def _runs(labels: list[int]) -> Iterator[tuple[int, int]]:
    """[start, end) of each contiguous run of labelled positions."""
    start = None
    for i, label in enumerate([*labels, IGNORE]):
        if label != IGNORE and start is None:
            start = i
        elif label == IGNORE and start is not None:
            yield start, i
            start = None


def _score_fields(
    tokenizer: Any, example: SFTExample, correct: list[bool], totals: dict[str, int]
) -> None:
    """Add this example's field counts to totals; correct[t]: token t predicted right."""
    ids = example.input_ids
    for start, end in _runs(example.labels):
        text = tokenizer.decode(ids[start:end])
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        if enc["input_ids"] != ids[start:end]:
            continue  # re-encoding differs: offsets would not line up; skip this turn
        context = tokenizer.decode(ids[:start])
        # fields are looked for in what the agent wrote, without the end-of-turn token
        for lo, hi in field_spans(text.removesuffix(END_OF_TURN)):
            tokens = [t for t, (a, b) in enumerate(enc["offset_mapping"]) if a < hi and b > lo]
            right = all(correct[start + t] for t in tokens)
            totals["fields"] += 1
            totals["fields_right"] += right
            if text[lo:hi] in context:
                totals["copy_fields"] += 1
                totals["copy_right"] += right
                totals["copy_tokens"] += len(tokens)
                totals["copy_tokens_right"] += sum(correct[start + t] for t in tokens)


@torch.no_grad()
def teacher_forced_metrics(
    model: Any, tokenizer: Any, examples: Sequence[SFTExample], batch_tokens: int = 8192
) -> dict[str, float]:
    model.eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    totals = dict.fromkeys(
        (
            "tokens",
            "tokens_right",
            "fields",
            "fields_right",
            "copy_fields",
            "copy_right",
            "copy_tokens",
            "copy_tokens_right",
        ),
        0,
    )
    loss_sum = 0.0
    for batch_idx in make_batches(examples, batch_tokens, seed=0):
        batch = {
            k: v.to(device) for k, v in collate([examples[i] for i in batch_idx], pad_id).items()
        }
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logits, targets = logits[:, :-1].float(), batch["labels"][:, 1:]  # (B, T-1, V), (B, T-1)
        mask = targets != IGNORE
        loss_sum += float(
            torch.nn.functional.cross_entropy(logits[mask], targets[mask], reduction="sum")
        )
        right = (logits.argmax(-1) == targets) & mask  # (B, T-1)
        totals["tokens"] += int(mask.sum())
        totals["tokens_right"] += int(right.sum())
        for row, i in enumerate(batch_idx):
            # correct[t] is about token t, predicted at position t - 1
            correct = [False, *right[row].tolist()]
            _score_fields(tokenizer, examples[i], correct, totals)
    n = max(totals["tokens"], 1)
    return {
        "loss": loss_sum / n,
        "token_acc": totals["tokens_right"] / n,
        "fields": totals["fields"],
        "field_acc": totals["fields_right"] / max(totals["fields"], 1),
        "copy_fields": totals["copy_fields"],
        "copy_acc": totals["copy_right"] / max(totals["copy_fields"], 1),
        "copy_token_acc": totals["copy_tokens_right"] / max(totals["copy_tokens"], 1),
    }
