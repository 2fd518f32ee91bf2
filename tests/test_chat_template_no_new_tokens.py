"""`attach_chat_template(new_tokens=False)` on a small BPE tokenizer: the vocabulary is left as it
is, the turn tokens it has become special, and one that lacks them is a one-line error."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from wideseek.errors import WideseekError
from wideseek.llm.chat_template import (
    MARKUP_TOKENS,
    ChatFormatError,
    attach_chat_template,
)

CORPUS = ["What is the capital of Peru? Lima.", '{"name": "search", "arguments": {}}'] * 5


def bpe(special: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def test_the_vocabulary_is_kept_and_markup_stays_text():
    tok = bpe(["<|im_start|>", "<|im_end|>"])  # no <|endoftext|>: padding falls back to EOS
    vocab = dict(tok.get_vocab())
    attach_chat_template(tok, new_tokens=False)
    assert tok.get_vocab() == vocab
    assert tok.eos_token == tok.pad_token == "<|im_end|>"
    assert all(len(tok.encode(m, add_special_tokens=False)) > 1 for m in MARKUP_TOKENS)
    ids = tok.encode("<|im_start|>user\nhi<|im_end|>", add_special_tokens=False)
    assert ids[0] == vocab["<|im_start|>"] and ids[-1] == vocab["<|im_end|>"]
    assert tok.decode(ids, skip_special_tokens=True) == "user\nhi"
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert text == "<|im_start|>user\nhi<|im_end|>\n"


def test_a_tokenizer_without_turn_tokens_is_one_line():
    tok = bpe([])
    with pytest.raises(ChatFormatError, match=r"lacks the chat turn tokens <\|im_start\|>") as e:
        attach_chat_template(tok, new_tokens=False)
    assert isinstance(e.value, WideseekError) and "\n" not in str(e.value)
