"""The token path end to end: an agent over HttpEngine with a local renderer records exactly the
token ids the server saw and returned, turn after turn (what RL training relies on)."""

from __future__ import annotations

import json

from fake_openai import FakeOpenAIServer
from fake_policy import write_corpus
from tiny_tokenizer import build_tiny_tokenizer
from wideseek.config import Config
from wideseek.llm.renderer import HFChatRenderer
from wideseek.runtime import open_orchestrator
from wideseek.types import Task, read_trajectories, write_trajectories


def call(name: str, arguments: dict) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


async def test_single_agent_token_ids_match_the_wire(tmp_path):
    tok_dir = build_tiny_tokenizer(tmp_path / "tok")
    renderer = HFChatRenderer.from_pretrained(tok_dir)
    replies = [
        "<think>\nlook it up\n</think>\n\n" + call("search", {"query": "Peru"}),
        call("access", {"url": "https://w.test/peru"}),
        "The capital of Peru is Lima.",
    ]

    def encode(text: str) -> list[int]:  # what a real server returns: the reply, then EOS
        return renderer.tokenizer.encode(text, add_special_tokens=False) + renderer.end_of_turn_ids

    cfg = Config.model_validate(
        {
            "agent": {"mode": "single", "context_length": 4096},
            "engine": {"path": "tokens", "tokenizer": str(tok_dir)},
            "tools": {"corpus": str(write_corpus(tmp_path / "corpus.jsonl"))},
        }
    )
    with FakeOpenAIServer(script=replies, encode=encode) as srv:
        cfg.engine.base_url = srv.base_url
        async with open_orchestrator(cfg) as orchestrator:
            traj = await orchestrator.run(Task(id="p", question="Capital of Peru?", kind="qa"))
        sent = [b["prompt"] for b in srv.bodies("completions")]
    (agent,) = traj.agents
    assert traj.final_answer == "The capital of Peru is Lima." and len(agent.turns) == 3
    for k, turn in enumerate(agent.turns):
        assert agent.prompt_token_ids(k) == sent[k]  # the recorded prompt is what was sent
        assert turn.response_token_ids == encode(replies[k])
        assert turn.response_logprobs == [-0.5] * len(turn.response_token_ids)
    # each prompt extends the previous one by its reply and the tool results, never re-rendered
    assert sent[1][: len(sent[0])] == sent[0] and sent[2][: len(sent[1])] == sent[1]
    tail = renderer.tokenizer.decode(sent[2][len(sent[1]) + len(encode(replies[1])) :])
    assert "<tool_response>" in tail and "capital is Lima" in tail
    # ids and logprobs survive the trajectory file
    path = tmp_path / "trajectory.jsonl"
    write_trajectories(path, [traj])
    assert read_trajectories(path) == [traj]
