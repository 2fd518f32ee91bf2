"""wideseek's own chat template, in the Qwen3 / Hermes turn format, and the special tokens it needs.

Models trained on the Qwen3 format (Qwen3, WideSeek-R1-4B) expect:
- turns `<|im_start|>{role}\\n{content}<|im_end|>\\n`;
- with tools, a system turn whose text (the caller's system prompt, if any, first) has a
  `# Tools` section listing each function's JSON schema, one per line, inside `<tools></tools>`,
  and says how to call one: `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`;
- assistant tool calls in that same shape, after the content, one block per call;
- tool results as a *user* turn: each result in `\\n<tool_response>\\n...\\n</tool_response>`,
  consecutive results grouped in one turn;
- `<think>...</think>` reasoning at the start of an assistant turn; with thinking off the
  generation prompt pre-fills an empty think block.

The template text below is written for this project and produces that format. One deliberate
difference from Qwen3's own template: earlier assistant turns are rendered verbatim, thinking
included (Qwen3's drops old `<think>` blocks on re-rendering). Agents grow their context token by
token, so the model always sees its old thinking; rendering it the same way keeps
`render(history + reply + tool) == render(history) + reply + tool_response` exact (RLinf runs
WideSeek-R1 the same way). An assistant message whose content already holds `<tool_call>` blocks
(the raw generation) is not given its `tool_calls` a second time.

`attach_chat_template(tokenizer)` adds the tokens and the template to any Hugging Face tokenizer.
`attach_chat_template(tokenizer, new_tokens=False)` is for pretrained models: it adds no token (a
new row in a trained embedding matrix is untrained noise the model would read and must learn to
write); the ChatML turn tokens must already be there, and the markup the tokenizer lacks stays
plain text, several tokens long (agents parse text, so nothing downstream changes).
This module knows text formats only; tokenizing is the renderer's job.
"""

from __future__ import annotations

from typing import Any

from wideseek.errors import WideseekError

# Control tokens: skipped by decode(skip_special_tokens=True). Markup tokens: kept in decoded
# text, because agents parse them; single tokens where attach_chat_template adds them (the same
# split as Qwen3's tokenizer), plain text where new_tokens=False finds them missing.
CONTROL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TOOL_RESPONSE_END = "</tool_response>"
MARKUP_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", TOOL_RESPONSE_END)
THINK_TOKENS = ("<think>", "</think>")
END_OF_TURN = "<|im_end|>"
PAD = "<|endoftext|>"
TURN_TOKENS = ("<|im_start|>", END_OF_TURN)  # what new_tokens=False cannot do without


class ChatFormatError(WideseekError, ValueError):
    """A tokenizer that cannot carry the chat format without new tokens."""


TOOLS_PREAMBLE = (
    "# Tools\n\n"
    "You can use the functions below to help with the task.\n\n"
    "Each function's signature is given as JSON inside <tools></tools> XML tags:\n<tools>"
)
TOOLS_USAGE = (
    "\n</tools>\n\n"
    "To call a function, reply with a JSON object holding its name and arguments inside "
    "<tool_call></tool_call> XML tags:\n"
    '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)

# Jinja, rendered by transformers' `apply_chat_template`; `{{- ... -}}` everywhere so only the
# quoted strings reach the output.
CHAT_TEMPLATE = (
    """
{%- set has_system = messages and messages[0].role == 'system' -%}
{%- if tools -%}
  {{- '<|im_start|>system\\n' -}}
  {%- if has_system and messages[0].content -%}{{- messages[0].content + '\\n\\n' -}}{%- endif -%}
  {{- TOOLS_PREAMBLE -}}
  {%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}
  {{- TOOLS_USAGE + '<|im_end|>\\n' -}}
{%- elif has_system -%}
  {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' -}}
{%- endif -%}
{%- for message in messages -%}
  {%- set content = message.content or '' -%}
  {%- if message.role == 'system' and loop.first -%}
  {%- elif message.role == 'tool' -%}
    {%- if loop.first or loop.previtem.role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}
    {{- '\\n<tool_response>\\n' + content + '\\n</tool_response>' -}}
    {%- if loop.last or loop.nextitem.role != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}
  {%- elif message.role == 'assistant' -%}
    {{- '<|im_start|>assistant\\n' + content -}}
    {%- if message.tool_calls and '<tool_call>' not in content -%}
      {%- for call in message.tool_calls -%}
        {%- set fn = call.function if call.function is defined else call -%}
        {%- if content or not loop.first -%}{{- '\\n' -}}{%- endif -%}
        {{- '<tool_call>\\n{"name": ' + (fn.name | tojson) + ', "arguments": ' -}}
        {%- if fn.arguments is string -%}{{- fn.arguments -}}
        {%- else -%}{{- fn.arguments | tojson -}}{%- endif -%}
        {{- '}\\n</tool_call>' -}}
      {%- endfor -%}
    {%- endif -%}
    {{- '<|im_end|>\\n' -}}
  {%- else -%}
    {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' -}}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<|im_start|>assistant\\n' -}}
  {%- if enable_thinking is defined and not enable_thinking -%}
    {{- '<think>\\n\\n</think>\\n\\n' -}}
  {%- endif -%}
{%- endif -%}
""".strip()
    .replace("TOOLS_PREAMBLE", repr(TOOLS_PREAMBLE))
    .replace("TOOLS_USAGE", repr(TOOLS_USAGE))
)


def attach_chat_template(tokenizer: Any, new_tokens: bool = True) -> Any:
    """Give a Hugging Face tokenizer our chat template and its tokens (in place; returned).

    With `new_tokens`, missing control and markup tokens are appended (ids of tokens already in
    the vocabulary are kept). Without, the vocabulary is left as it is (see the module
    docstring): control tokens it has are marked special, and a missing turn token is a
    ChatFormatError. Either way `<|im_end|>` becomes the EOS token (generation stops at the end
    of a turn) and `<|endoftext|>` the padding token, or `<|im_end|>` where there is none.
    """
    from tokenizers import AddedToken  # local extra; imported here so the module stays light

    if new_tokens:
        tokenizer.add_special_tokens(
            {"additional_special_tokens": [AddedToken(t, special=True) for t in CONTROL_TOKENS]}
        )
        tokenizer.add_tokens(
            [AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS + THINK_TOKENS]
        )
    else:
        vocab = tokenizer.get_vocab()
        missing = [t for t in TURN_TOKENS if t not in vocab]
        if missing:
            raise ChatFormatError(
                f"tokenizer lacks the chat turn tokens {', '.join(missing)}; the project's chat "
                "format needs them (new_tokens=True would add untrained rows)"
            )
        size = len(tokenizer)
        # Special, so that they are never split by BPE and decode(skip_special_tokens) drops
        # them; already in the vocabulary, so they keep their ids.
        present = [AddedToken(t, special=True) for t in CONTROL_TOKENS if t in vocab]
        tokenizer.add_special_tokens({"additional_special_tokens": present})
        assert len(tokenizer) == size, "marking existing tokens special added tokens"
    tokenizer.eos_token = END_OF_TURN
    tokenizer.pad_token = PAD if PAD in tokenizer.get_vocab() else END_OF_TURN
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
