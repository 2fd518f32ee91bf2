"""The web tools wired into config and CLI: `tools.web`, `--search` / `--access` on the commands
that run agents, `wideseek tools check`, and the backend's life in `open_orchestrator`. Every
web service is the loopback FakeWeb; the model is the fake OpenAI server or a scripted engine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fake_openai import FakeOpenAIServer, chat_reply
from scripted_engine import ScriptedEngine
from test_web_fakes import FakeWeb, expected_urls
from wideseek.cli import main
from wideseek.cli.options import build_config
from wideseek.config import Config, ConfigError, load_config
from wideseek.llm.engine import EngineError
from wideseek.runtime import open_backend, open_orchestrator
from wideseek.tools.web import WebBackend
from wideseek.types import Task, read_trajectories

KEY = "sk-cli-test-secret-7777"
KEY_ENV = "WIDESEEK_TEST_CLI_KEY"


@pytest.fixture(scope="module")
def web() -> Iterator[FakeWeb]:
    with FakeWeb({"serper": KEY, "tavily": KEY}) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(web: FakeWeb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    web.reset()
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.delenv("JINA_API_KEY", raising=False)
    monkeypatch.setenv("WIDESEEK_CACHE", str(tmp_path / "cache"))  # never the user's cache


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return int(e.value.code)


def web_config_file(web: FakeWeb, path: Path, **overrides: Any) -> Path:
    """A YAML config whose tools.web points every backend at the fake."""
    section = web.config(KEY_ENV, **overrides).model_dump(mode="json")
    path.write_text(yaml.safe_dump({"tools": {"web": section}}), encoding="utf-8")
    return path


# -- config ------------------------------------------------------------------------------------


def test_tools_web_is_off_by_default_and_parses_from_yaml(tmp_path):
    assert Config().tools.web is None
    path = tmp_path / "c.yaml"
    path.write_text("tools:\n  web:\n    search: brave\n    brave:\n      rate_per_s: 0.5\n")
    web = load_config(path).tools.web
    assert web is not None and (web.search, web.access) == ("brave", "jina")
    assert web.brave.rate_per_s == 0.5 and web.brave.key_env == "BRAVE_API_KEY"  # rest default


def test_a_null_web_section_takes_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tools:\n  web: null\n")
    assert load_config(path).tools.web is None
    web = load_config(path, ["tools.web.access=direct"]).tools.web
    assert web is not None and (web.search, web.access) == ("serper", "direct")


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (["tools.web.search=brave", "tools.corpus=c.jsonl"], "web cannot be combined with corpus"),
        (["tools.web.search=brave", "tools.retrieval_url=http://x"], "with retrieval_url"),
        (["tools.web.search=bing"], "tools.web.search"),
        (["tools.web.serper.api_key=sk-1"], "tools.web.serper.api_key"),  # no keys in configs
    ],
)
def test_bad_web_settings_are_one_config_error(overrides, needle):
    with pytest.raises(ConfigError) as failure:
        load_config(None, overrides)
    message = str(failure.value)
    assert needle in message and "\n" not in message


def test_search_or_access_flag_alone_turns_web_on_with_the_other_default():
    web = build_config(search="tavily").tools.web
    assert web is not None and (web.search, web.access) == ("tavily", "jina")
    web = build_config(access="direct").tools.web
    assert web is not None and (web.search, web.access) == ("serper", "direct")
    assert build_config().tools.web is None
    # the flag wins over the file's choice and keeps the file's other web settings
    over = build_config(set_=["tools.web.search=brave", "tools.web.timeout_s=3"], search="serper")
    assert over.tools.web is not None and over.tools.web.search == "serper"
    assert over.tools.web.timeout_s == 3


def test_config_stays_at_the_bottom_of_the_import_graph():
    """config (with its web section) imports no package above it: no arrow points up."""
    upper = ("tools", "llm", "agents", "eval", "runtime", "train", "world", "cli")
    code = (
        "import sys, wideseek.config; "
        "bad = [m for m in sys.modules if m == 'httpx' or "
        f"(m.startswith('wideseek.') and m.split('.')[1] in {upper})]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the backend in the runtime ----------------------------------------------------------------


async def test_open_backend_gives_the_web_backend_and_refuses_two_backends(web):
    cfg = Config.model_validate({"tools": {"web": web.config(KEY_ENV).model_dump()}})
    backend = open_backend(cfg)
    assert isinstance(backend, WebBackend) and backend.searcher.name == "serper"
    hits = await backend.search("oslo", 2)
    assert [h.url for h in hits] == expected_urls("oslo", 2)
    await backend.aclose()
    cfg.tools.corpus = "pages.jsonl"  # set after validation, as code may do
    with pytest.raises(ConfigError, match="tools: web cannot be combined with corpus"):
        open_backend(cfg)


class SpyBackend:
    closed = False

    async def search(self, query: str, k: int) -> list:
        return []

    async def access(self, url: str) -> None:
        return None

    async def aclose(self) -> None:
        self.closed = True


async def test_the_backend_is_closed_when_the_run_ends_and_when_the_engine_fails(monkeypatch):
    spy = SpyBackend()
    monkeypatch.setattr("wideseek.runtime.assembly.open_backend", lambda config: spy)
    cfg = Config.model_validate({"agent": {"mode": "single"}})
    async with open_orchestrator(cfg, engine=ScriptedEngine(["Oslo."])) as orchestrator:
        await orchestrator.run(Task(id="t", question="Capital of Norway?", kind="qa"))
        assert not spy.closed
    assert spy.closed

    async def no_engine(config: Config) -> None:
        raise EngineError("engine down")

    spy = SpyBackend()
    monkeypatch.setattr("wideseek.runtime.assembly.open_engine", no_engine)
    with pytest.raises(EngineError):
        async with open_orchestrator(cfg):
            pass
    assert spy.closed


# -- `wideseek ask --search ...` ---------------------------------------------------------------


class WebPolicy:
    """One agent (single mode): search, read the first hit, answer with what the page said."""

    def __call__(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        tool_msgs = [m for m in body["messages"] if m["role"] == "tool"]
        if not tool_msgs:
            return chat_reply(tool_calls=[("search", {"query": "capital of Norway"})])
        if len(tool_msgs) == 1:
            url = re.search(r"https://example\.org/\S+?/1\b", tool_msgs[0]["content"]).group(0)
            return chat_reply(tool_calls=[("access", {"url": url})])
        return chat_reply("Oslo." if "Text of" in tool_msgs[1]["content"] else "unknown")


def ask_web(web: FakeWeb, tmp_path: Path, *flags: str) -> tuple[int, Path]:
    out = tmp_path / "traj.json"
    sets = {
        "serper.base_url": f"{web.url}/serper",
        "serper.key_env": KEY_ENV,
        "jina.base_url": f"{web.url}/jina",
        "serper.rate_per_s": 0,
        "jina.rate_per_s": 0,
    }
    with FakeOpenAIServer(responder=WebPolicy()) as srv:
        argv = ["ask", "Capital of Norway?", "--qa", "--mode", "single", "--no-live"]
        argv += ["--engine", srv.base_url, "--out", str(out), *flags]
        for key, value in sets.items():
            argv += ["--set", f"tools.web.{key}={value}"]
        return run(argv), out


def test_ask_with_search_flag_searches_and_reads_the_web(web, tmp_path, capsys):
    code, out = ask_web(web, tmp_path, "--search", "serper", "--access", "jina")
    assert code == 0 and "Oslo" in capsys.readouterr().out
    (seen,) = web.seen("serper")
    assert seen.headers["x-api-key"] == KEY and b"capital of Norway" in seen.body
    (read,) = web.seen("jina")
    assert read.path == "/jina/" + expected_urls("capital of Norway", 1)[0]
    (traj,) = read_trajectories(out)
    search, access = (
        traj.agents[0].turns[0].tool_results[0],
        traj.agents[0].turns[1].tool_results[0],
    )
    assert search.data["audit"]["backend"] == "serper" and search.data["audit"]["cache"] == "miss"
    assert access.data["page"]["meta"]["audit"]["backend"] == "jina"
    assert KEY not in out.read_text()
    # a second run answers from the on-disk cache ($WIDESEEK_CACHE): no new web requests
    web.reset()
    code, out = ask_web(web, tmp_path, "--search", "serper")
    assert code == 0 and web.requests == []
    (traj,) = read_trajectories(out)
    assert traj.agents[0].turns[0].tool_results[0].data["audit"]["cache"] == "hit"


def test_a_malformed_allow_list_entry_is_one_line_at_start_up(capsys):
    entry = 'tools.web.direct.allowed_hosts=["fake.test:99999"]'
    code = run(["ask", "q", "--no-live", "--access", "direct", "--set", entry])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert err.startswith("error:") and "allow-list entry 'fake.test:99999': bad port" in err


def test_ask_with_search_and_corpus_is_one_line(tmp_path, capsys):
    code = run(["ask", "q", "--no-live", "--search", "serper", "--corpus", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert err.startswith("error:") and "web cannot be combined with corpus" in err


@pytest.mark.parametrize("command", [["ask"], ["eval", "qa"], ["eval", "world"]])
def test_commands_that_run_agents_offer_search_and_access(command, capsys):
    assert run([*command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--search" in text and "--access" in text and "SERPER_API_KEY" in text


def test_an_unknown_search_name_is_a_usage_error(capsys):
    assert run(["ask", "q", "--search", "bing"]) == 2
    assert "bing" in capsys.readouterr().err


# -- `wideseek tools check` --------------------------------------------------------------------


def test_tools_check_says_ok_per_backend_and_exits_0(web, tmp_path, capsys):
    config = web_config_file(web, tmp_path / "web.yaml")
    assert run(["tools", "check", "--config", str(config)]) == 0  # the configured pair
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["serper", "jina"]
    assert lines[0].startswith(f"serper: ok: {web.url}/serper answered (1 result)")
    assert lines[1].startswith(f"jina: ok: read {web.site_url('check')}")
    assert web.seen("jina")[0].headers["authorization"] == f"Bearer {KEY}"  # its key_env is set


def test_tools_check_names_a_missing_key_and_exits_1(web, tmp_path, capsys, monkeypatch):
    config = web_config_file(web, tmp_path / "web.yaml")
    monkeypatch.delenv(KEY_ENV)
    argv = ["tools", "check", "--config", str(config), "--search", "serper", "--search", "searxng"]
    assert run(argv) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"serper: no API key: set the environment variable {KEY_ENV}"
    assert lines[1].startswith("searxng: ok: ")
    assert web.seen("serper") == []  # nothing sent without a key


def test_tools_check_never_prints_a_key(web, tmp_path, capsys, monkeypatch):
    config = web_config_file(web, tmp_path / "web.yaml")
    monkeypatch.setenv(KEY_ENV, KEY + "-revoked")  # the fake echoes a rejected key back
    assert run(["tools", "check", "--config", str(config), "--search", "tavily"]) == 1
    captured = capsys.readouterr()
    (line,) = captured.out.splitlines()
    assert line.startswith("tavily: HTTP 401") and "tavily: tavily" not in line
    assert KEY not in captured.out + captured.err


def test_tools_check_takes_set_overrides(web, capsys):
    argv = [
        "tools",
        "check",
        "--access",
        "jina",
        "--set",
        f"tools.web.jina.base_url={web.url}/jina",
    ]
    argv += ["--set", f"tools.web.check_url={web.site_url('check')}"]
    assert run(argv) == 0
    assert capsys.readouterr().out.startswith("jina: ok: read ")
    assert len(web.seen("jina")) == 1


@pytest.mark.parametrize("command", [["tools"], ["tools", "check"]])
def test_tools_help_renders(command, capsys):
    assert run([*command, "--help"]) == 0
    assert "Usage: " in capsys.readouterr().out
