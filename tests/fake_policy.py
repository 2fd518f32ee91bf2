"""A fixed policy played by the fake OpenAI server: it stands in for a model behind a real server.

`CapitalsPolicy` answers chat-completion requests the way a sensible model would on the toy task
"capitals of these countries": the lead delegates one subtask per country, each subagent searches
for its country, reads the first hit and reports the capital it read, and the lead writes the
table from the reports. It only looks at the request body (tools offered, messages so far), so
the whole client path (HttpEngine, agent loop, tools over a real corpus file) runs for real.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fake_openai import chat_reply

COUNTRIES = {
    "Chile": "Santiago",
    "Peru": "Lima",
    "Bolivia": "Sucre",
    "Ecuador": "Quito",
    "Colombia": "Bogotá",
    "Uruguay": "Montevideo",
    "Paraguay": "Asunción",
    "Venezuela": "Caracas",
}


def write_corpus(path: Path, countries: dict[str, str] = COUNTRIES) -> Path:
    """One page per country, in the local corpus format."""
    with path.open("w", encoding="utf-8") as f:
        for name, capital in countries.items():
            page = {
                "id": name.lower(),
                "url": f"https://w.test/{name.lower()}",
                "title": name,
                "text": f"{name} is a country in South America. Its capital is {capital}.",
            }
            f.write(json.dumps(page, ensure_ascii=False) + "\n")
    return path


def question(countries: list[str]) -> str:
    return f"List the capitals of {', '.join(countries)}. Columns: Country, Capital."


class CapitalsPolicy:
    """`responder(endpoint, body)` for FakeOpenAIServer (chat path)."""

    def __call__(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        tools = {t["function"]["name"] for t in body.get("tools") or []}
        messages = body["messages"]
        if "create_subagents" in tools:
            return self._lead(messages)
        return self._subagent(messages)

    def _lead(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        if messages[-1]["role"] != "tool":
            ask = next(m["content"] for m in messages if m["role"] == "user")
            names = re.search(r"capitals of (.+?)\. Columns", ask).group(1).split(", ")
            subtasks = [f"Find the capital of {n}." for n in names]
            return chat_reply(tool_calls=[("create_subagents", {"subtasks": subtasks})])
        reports = re.findall(r"capital of (\w+) is (\w+)", messages[-1]["content"])
        rows = "\n".join(f"| {c} | {cap} |" for c, cap in reports)
        return chat_reply(f"```markdown\n| Country | Capital |\n|---|---|\n{rows}\n```")

    def _subagent(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        tool_msgs = [m for m in messages if m["role"] == "tool"]
        ask = next(m["content"] for m in messages if m["role"] == "user")
        country = re.search(r"capital of (\w+)", ask).group(1)
        if not tool_msgs:
            return chat_reply(tool_calls=[("search", {"query": country})])
        if len(tool_msgs) == 1:
            url = re.search(r"https://w\.test/\w+", tool_msgs[0]["content"]).group(0)
            return chat_reply(tool_calls=[("access", {"url": url})])
        found = re.search(r"capital is (\w+)", tool_msgs[-1]["content"])
        return chat_reply(f"The capital of {country} is {found.group(1) if found else 'unknown'}.")
