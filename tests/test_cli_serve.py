"""`wideseek serve` with no flags: a real process serving the shipped model to the real
`openai` client, as a user would run it."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

from wideseek.llm.resolved_model import resolve_model
from wideseek.runtime import package_model_dir

# the shipped model's name, as its directory records it (wideseek.json)
SHIPPED = resolve_model(package_model_dir()).name

START_TIMEOUT_S = 180  # loading torch and the model on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(proc: subprocess.Popen, url: str, stderr: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"wideseek serve exited: {stderr.read_text()}"
        try:
            if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"wideseek serve did not answer within {START_TIMEOUT_S}s")


def test_serve_with_no_flags_answers_the_openai_client(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "WIDESEEK_MODEL"}
    stderr_path = tmp_path / "stderr.txt"
    stderr = stderr_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wideseek", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env=env,
    )
    try:
        wait_until_up(proc, url, stderr_path)
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list()] == [SHIPPED]
        reply = client.chat.completions.create(
            model=SHIPPED,
            messages=[{"role": "user", "content": "Capital of Peru?"}],
            max_tokens=8,
        )
        choice = reply.choices[0]
        assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
        assert choice.finish_reason in {"stop", "length"}
        assert 0 < reply.usage.completion_tokens <= 8
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        stderr.close()
    err = stderr_path.read_text()
    assert "the small model shipped with wideseek" in err  # the note `ask` prints too
    assert f"serving '{SHIPPED}' on {url}/v1" in err
