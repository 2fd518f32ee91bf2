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
This module knows text formats only; tokenizing is the renderer's job.
"""

from __future__ import annotations

from typing import Any

# Control tokens: skipped by decode(skip_special_tokens=True). Markup tokens: single tokens,
# but kept in decoded text, because agents parse them (same split as Qwen3's tokenizer).
CONTROL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TOOL_RESPONSE_END = "</tool_response>"
MARKUP_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", TOOL_RESPONSE_END)
THINK_TOKENS = ("<think>", "</think>")
END_OF_TURN = "<|im_end|>"
PAD = "<|endoftext|>"

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


def attach_chat_template(tokenizer: Any) -> Any:
    """Give a Hugging Face tokenizer our special tokens and chat template (in place; returned).

    Tokens already in the vocabulary keep their ids; new ones are appended. `<|im_end|>` becomes
    the EOS token (generation stops at the end of a turn) and `<|endoftext|>` the padding token.
    """
    from tokenizers import AddedToken  # local extra; imported here so the module stays light

    tokenizer.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True) for t in CONTROL_TOKENS]}
    )
    tokenizer.add_tokens(
        [AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS + THINK_TOKENS]
    )
    tokenizer.eos_token = END_OF_TURN
    tokenizer.pad_token = PAD
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
