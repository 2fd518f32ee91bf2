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

from wideseek.llm import chat_template

# The Qwen3-format tokens and template are defined once, in llm/chat_template.py; the markup
# tokens (tool calls, tool responses, think) are single tokens but kept when decoding, so the
# tool-call parser still sees them in a completion's text.
CONTROL_TOKENS = list(chat_template.CONTROL_TOKENS)
MARKUP_TOKENS = list(chat_template.MARKUP_TOKENS + chat_template.THINK_TOKENS)
SPECIAL_TOKENS = CONTROL_TOKENS + MARKUP_TOKENS
IM_START = "<|im_start|>"


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
    chat_template.attach_chat_template(hf)
    save_atomically(hf.save_pretrained, Path(out_dir))
    return hf


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_atomically(write: Callable[[Path], object], out_dir: Path) -> None:
    """Run `write(tmp_dir)`, then put tmp_dir in place of `out_dir` (replaced only on success)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    tmp.chmod(0o755 & ~_umask())  # mkdtemp makes it private (0700); a model dir is shared
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
