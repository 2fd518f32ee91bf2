"""`HFChatRenderer`: the ChatRenderer protocol over a Hugging Face tokenizer from a local dir.

It turns chat messages into the exact token ids a model sees, with the tokenizer's own chat
template (wideseek's, see `chat_template.py`, or a model's, e.g. Qwen3 / WideSeek-R1-4B):
- `render_prompt(messages, tools)`: the whole prompt, ending with the generation prompt;
- `render_tool_response(text)` / `render_tool_responses(texts)`: the ids appended to a running
  context after an assistant turn, i.e. what follows the assistant's end-of-turn token up to
  the next generation prompt (`\\n<|im_start|>user\\n<tool_response>\\n...` in the Qwen3
  format); `render_tool_turn(response_ids, texts)` adds the end-of-turn ids first when the
  response lacks them. The tail is derived by rendering a probe conversation with and without
  the tool messages and taking the difference, not hard-coded, so any template that renders
  turns as a prefix works; one that does not (rewrites earlier turns) is a clear ValueError.
- `end_of_turn_ids`: the ids that close an assistant turn (`<|im_end|>`). A generation that
  stopped on EOS already ends with them (vLLM and SGLang return the EOS id); one cut by a stop
  string or the length limit does not, and `render_tool_turn` puts them back.

Prefix consistency, what training relies on: for a reply `r` whose ids end with
`end_of_turn_ids`, `render_prompt(h + [r, tool]) == render_prompt(h) + ids(r) +
render_tool_response(tool)`. It holds with our template because earlier turns are rendered
verbatim. It does NOT hold with Qwen3's own template when `r` has a `<think>` block (that template
drops old thinking on re-rendering); agents therefore grow contexts by appending ids, never by
re-rendering. Byte-level BPE may also tokenize a re-rendered reply differently from how it was
sampled; appending the sampled ids avoids that too.

This module knows tokenizers and chat templates, not HTTP, agents or tools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wideseek.types import Message

_PROBE = "wideseek-probe-reply"
# The probe reply carries a think block: Qwen3's own template renders a final assistant turn
# without one as `<think>\n\n</think>\n\n...` but an earlier one as plain text, which would
# make the probe itself look prefix-inconsistent.
_PROBE_REPLY = f"<think>\nprobe\n</think>\n\n{_PROBE}"

# Tokenizer calls without the "longer than the specified maximum ... indexing errors" warning: a
# text past model_max_length is ours to judge (an agent's context_overflow, SFT's max_length)
QUIET = {"verbose": False}


class HFChatRenderer:
    def __init__(self, tokenizer: Any, context_length: int, enable_thinking: bool = True) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("tokenizer has no chat template (see attach_chat_template)")
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.enable_thinking = enable_thinking
        self._turn_end_text = self._find_turn_end()
        self.end_of_turn_ids: list[int] = self._encode(self._turn_end_text)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, context_length: int | None = None, enable_thinking: bool = True
    ) -> HFChatRenderer:
        """Load a tokenizer from a local dir (never downloads). Without `context_length`, the
        tokenizer's `model_max_length` is used when it is set to a real value."""
        from transformers import AutoTokenizer  # local extra; only the token path needs it

        path = Path(path)
        if not path.is_dir():
            raise ValueError(f"{path}: tokenizer directory not found")
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: cannot load tokenizer ({e})") from None
        if context_length is None:
            context_length = int(tokenizer.model_max_length)
            if context_length > 10**7:  # transformers' "unset" sentinel is ~1e30
                raise ValueError(f"{path}: tokenizer has no model_max_length; pass context_length")
        return cls(tokenizer, context_length, enable_thinking)

    # -- ChatRenderer protocol -----------------------------------------------------------------

    def render_prompt(
        self, messages: list[Message], tools: list[dict[str, Any]] | None
    ) -> list[int]:
        ids = self.tokenizer.apply_chat_template(
            [m.to_openai() for m in messages],
            tools=tools or None,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=False,
            enable_thinking=self.enable_thinking,
            tokenizer_kwargs=QUIET,
        )
        return list(ids)

    def render_tool_response(self, text: str) -> list[int]:
        return self.render_tool_responses([text])

    def render_tool_turn(self, response_ids: list[int], tool_texts: list[str]) -> list[int]:
        """Ids to append after a response: the end of the assistant turn when the engine left it
        off (a stop string, the length cap), then the tool results and the generation prompt."""
        n = len(self.end_of_turn_ids)
        closed = response_ids[-n:] == self.end_of_turn_ids
        return ([] if closed else self.end_of_turn_ids) + self.render_tool_responses(tool_texts)

    def decode(self, ids: list[int]) -> str:
        """Exact text of `ids`, special tokens included (so decode(render) == rendered text)."""
        return self.tokenizer.decode(
            ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    # -- beyond the protocol -------------------------------------------------------------------

    def render_text(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        return self.tokenizer.apply_chat_template(
            messages,
            tools=tools or None,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
            enable_thinking=self.enable_thinking,
        )

    def render_tool_responses(self, texts: list[str]) -> list[int]:
        """Ids appended after an assistant turn for several tool results at once (a template
        may group consecutive tool messages into one turn, as Qwen3's does)."""
        head = self._probe_head()
        # Plain dicts: the template must see role "tool", whatever Message.to_openai does.
        tools = [{"role": "tool", "content": t} for t in texts]
        full = self.render_text([*self._probe(), *tools])
        if not full.startswith(head):
            raise ValueError(
                "chat template is not prefix-consistent: rendering tool messages changed the "
                "turns before them"
            )
        return self._encode(full[len(head) :])

    def _probe(self) -> list[dict[str, Any]]:
        return [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _PROBE_REPLY}]

    def _probe_head(self) -> str:
        """The probe conversation up to and including the assistant's end-of-turn marker."""
        base = self.render_text(self._probe(), add_generation_prompt=False)
        return base[: base.rindex(_PROBE) + len(_PROBE)] + self._turn_end_text

    def _find_turn_end(self) -> str:
        """What the template writes right after an assistant's content, minus the trailing
        whitespace that belongs to the next turn: `<|im_end|>` in the Qwen3 format."""
        base = self.render_text(self._probe(), add_generation_prompt=False)
        if _PROBE not in base:
            raise ValueError("chat template does not render assistant content verbatim")
        turn_end = base[base.rindex(_PROBE) + len(_PROBE) :].rstrip()
        if not turn_end:
            raise ValueError("chat template writes no end-of-turn marker after the assistant")
        return turn_end

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False, **QUIET))
