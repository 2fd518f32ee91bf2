"""TEMPORARY ChatRenderer over a tokenizer's own chat template, until `llm/renderer.py` lands.

`llm.local.make_renderer` is the only caller; at merge it is pointed at
`HFChatRenderer.from_pretrained` and this module is deleted. It renders with
`tokenizer.apply_chat_template` and writes the tool-response continuation in the Qwen3 format
(`<|im_start|>user` + `<tool_response>` blocks), which is what the template produces.
"""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedTokenizerBase

from wideseek.types import Message


class TemplateRenderer:
    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, context_length: int, enable_thinking: bool = True
    ) -> None:
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.enable_thinking = enable_thinking

    def render_prompt(
        self, messages: list[Message], tools: list[dict[str, Any]] | None
    ) -> list[int]:
        return list(
            self.tokenizer.apply_chat_template(
                [m.to_openai() for m in messages],
                tools=tools or None,
                add_generation_prompt=True,
                enable_thinking=self.enable_thinking,
                tokenize=True,
                return_dict=False,
            )
        )

    def render_tool_response(self, text: str) -> list[int]:
        # The assistant turn ended with <|im_end|>; the template puts "\n" after it.
        tail = "<think>\n\n</think>\n\n" if not self.enable_thinking else ""
        body = f"\n<|im_start|>user\n<tool_response>\n{text}\n</tool_response><|im_end|>\n"
        return self.tokenizer.encode(body + "<|im_start|>assistant\n" + tail)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)
