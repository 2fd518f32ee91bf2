"""Focused page extraction for `access(url, info_to_extract)`, done by a language model.

WideSeek-R1's access tool hands long pages to a model that keeps only what the caller asked
for, so a subagent's context holds facts, not whole pages. `engine_extractor(engine)` builds the
`Extractor` the search tools take (tools/search_tools.py) over any Engine: often the same
server the agents use, or a cheaper one. It is off unless `tools.summarize_pages` is set.
"""

from __future__ import annotations

from wideseek.llm.engine import Engine, GenerateRequest, SamplingParams
from wideseek.llm.toolcall import split_thinking
from wideseek.tools.search_tools import Extractor
from wideseek.types import Message

_SYSTEM = (
    "You read one web page for a researcher. Reply with only the facts on the page that answer "
    "the request, quoting names, numbers and dates exactly as the page writes them. If the page "
    "says nothing relevant, reply: Not on this page."
)


def engine_extractor(engine: Engine, max_tokens: int = 512) -> Extractor:
    async def extract(page_text: str, info_to_extract: str) -> str:
        request = GenerateRequest(
            messages=[
                Message(role="system", content=_SYSTEM),
                Message(
                    role="user",
                    content=f"Request: {info_to_extract}\n\nPage:\n{page_text}",
                ),
            ],
            sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens),
            metadata={"role": "extractor"},
        )
        completion = await engine.generate(request)
        summary = split_thinking(completion.text)[1].strip()
        if not summary:
            raise ValueError("the extractor returned nothing")
        return summary

    return extract
