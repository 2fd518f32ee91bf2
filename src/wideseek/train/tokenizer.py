"""Train the small model's tokenizer: byte-level BPE in the Qwen3 chat format.

`train_tokenizer(texts, vocab_size, out_dir)` learns a byte-level BPE with the `tokenizers`
library, adds the Qwen3 chat special tokens as single tokens, attaches a chat template and saves
everything in Hugging Face format, so `AutoTokenizer.from_pretrained(out_dir)` and
`apply_chat_template` work (and so would vLLM or SGLang).

Pre-tokenisation is chosen for copying, the skill the small model needs most (an agent copies
names and values from pages into tool calls and tables; probes trained from scratch failed at
exactly that): a value must be few tokens, and the *same* string must become the *same* tokens
wherever it appears.
- Words are letters (with combining marks) plus at most one leading space; punctuation never
  sticks to a word (GPT-4/Qwen patterns glue `"` or `(` onto the next word, so `"Paris` in a
  JSON argument and ` Paris` on a page would be unrelated tokens).
- Digits are grouped in runs of up to `digit_group` (default 3), never merged with letters or
  punctuation. Splitting digits one by one (Qwen, Llama-3's `\\p{N}`) generalises best for
  arithmetic, but a population like 213,993,437 becomes 11 tokens to copy instead of 5; the
  model does no arithmetic here, it copies, and every extra token is another chance to slip.
  Groups of 3 line up with thousands separators, the way the world's pages write numbers.
  Pass `digit_group=1` to get single digits.

This module does not know the model, the corpus or the agents; callers pass texts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

EOS = "<|endoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
# Control tokens: skipped by `decode(..., skip_special_tokens=True)`.
CONTROL_TOKENS = [EOS, IM_START, IM_END]
# Markup the model writes as text: single tokens, but kept when decoding (as in Qwen3), so the
# tool-call parser still sees them in a completion's text.
MARKUP_TOKENS = [
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]
SPECIAL_TOKENS = CONTROL_TOKENS + MARKUP_TOKENS

# --- Chat template -------------------------------------------------------------------------------
# TEMPORARY minimal Qwen3-format template, so this branch can train and test tokenizers now.
# At merge, `attach_chat_template` below becomes the one from `wideseek.llm.chat_template`
# (a one-line swap: nothing else in the project reads MINIMAL_CHAT_TEMPLATE).
MINIMAL_CHAT_TEMPLATE = (
    # Hugging Face renders with trim_blocks, which eats a newline right after a tag, so such
    # newlines are written as {{ '\\n' }}.
    "{% set ns = namespace(system='') %}"
    "{% if messages and messages[0].role == 'system' %}"
    "{% set ns.system = messages[0].content %}{% endif %}"
    "{% if tools %}"
    "<|im_start|>system\n{{ ns.system }}{% if ns.system %}{{ '\\n' }}{{ '\\n' }}{% endif %}"
    "Functions you can call, one JSON schema per line:\n<tools>"
    "{% for tool in tools %}{{ '\\n' }}{{ tool | tojson }}{% endfor %}\n</tools>\n"
    "Call one by writing <tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    "<|im_end|>\n"
    "{% elif ns.system %}<|im_start|>system\n{{ ns.system }}<|im_end|>\n{% endif %}"
    "{% for m in messages %}"
    "{% if m.role == 'user' %}<|im_start|>user\n{{ m.content }}<|im_end|>\n"
    "{% elif m.role == 'assistant' %}<|im_start|>assistant\n{{ m.content or '' }}"
    "{% for c in (m.tool_calls or []) %}"
    "{% set f = c.function if c.function is defined else c %}"
    "{% if not loop.first or m.content %}{{ '\\n' }}{% endif %}"
    '<tool_call>\n{"name": "{{ f.name }}", "arguments": '
    "{{ f.arguments if f.arguments is string else f.arguments | tojson }}}\n</tool_call>"
    "{% endfor %}<|im_end|>\n"
    "{% elif m.role == 'tool' %}"
    "{% if loop.first or messages[loop.index0 - 1].role != 'tool' %}<|im_start|>user{% endif %}"
    "{{ '\\n' }}<tool_response>\n{{ m.content }}\n</tool_response>"
    "{% if loop.last or messages[loop.index0 + 1].role != 'tool' %}<|im_end|>\n{% endif %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n"
    "{% endif %}{% endif %}"
)


def attach_chat_template(tokenizer: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """Set the chat template and the special-token roles the Qwen3 format expects."""
    tokenizer.chat_template = MINIMAL_CHAT_TEMPLATE
    tokenizer.eos_token = IM_END  # a chat model ends its turn with <|im_end|>, as Qwen3 does
    tokenizer.pad_token = EOS
    return tokenizer


# --- BPE ---------------------------------------------------------------------------------------
def _pretokenizer_pattern(digit_group: int) -> str:
    return (
        r"'(?:[sdmt]|ll|ve|re)"  # English contractions stay one piece
        rf"| ?[\p{{L}}\p{{M}}]+"  # a word with at most one leading space
        rf"| ?\p{{N}}{{1,{digit_group}}}"  # digits, in runs of at most `digit_group`
        r"| ?[^\s\p{L}\p{M}\p{N}]+"  # punctuation runs
        r"|\s+(?!\S)|\s+"  # whitespace; the last space before a word goes with the word
    )


def build_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int, digit_group: int = 3, min_frequency: int = 2
) -> Tokenizer:
    """The raw `tokenizers` BPE, trained on `texts`, with SPECIAL_TOKENS as single tokens."""
    if digit_group < 1:
        raise ValueError("digit_group must be >= 1")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_pretokenizer_pattern(digit_group)), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        # All 256 bytes are in the vocabulary, so any text can be encoded.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=CONTROL_TOKENS,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS])
    return tok


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | Path,
    digit_group: int = 3,
    model_max_length: int = 4096,
) -> PreTrainedTokenizerFast:
    """Train, wrap as a Hugging Face tokenizer with the chat template, and save to `out_dir`.

    The directory is written atomically (built in a sibling temp dir, then renamed), so a crash
    never leaves a half-saved tokenizer behind.
    """
    raw = build_bpe_tokenizer(texts, vocab_size, digit_group=digit_group)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        model_max_length=model_max_length,
        additional_special_tokens=[IM_START],
        clean_up_tokenization_spaces=False,
    )
    attach_chat_template(hf)
    save_atomically(hf.save_pretrained, Path(out_dir))
    return hf


def save_atomically(write: Callable[[Path], object], out_dir: Path) -> None:
    """Run `write(tmp_dir)`, then put tmp_dir in place of `out_dir` (replaced only on success)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        out_dir.rename(old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
