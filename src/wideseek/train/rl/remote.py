"""RL rollouts on a vLLM or SGLang server while the learner trains locally: which weights the
server holds, and putting newer ones there.

Contract: `RemotePolicy(settings, out_dir, tokenizer, context_length, lora)` stands for the
server `settings` (`config.RolloutEngine`) names.
- `engine()`: an `HttpEngine` on the token path (the learner's own tokenizer and chat template,
  so the ids and logprobs it returns are the ones the update scores), every request addressing
  the served version (`weight_push.adapter_request`: vLLM's `model`, SGLang's `lora_path`).
  One per event loop, made after the push it samples with: the caller closes it.
- `push(version, write)`: `write(dir)` puts version `version`'s weights into
  `shared_dir/v<version>/` (atomically), the server loads them (a LoRA adapter as
  `<adapter>-v<version>`, or full weights on SGLang), the previous version is unloaded and its
  directory deleted. `served` is then `version`. A refused load is `WeightPushError` (one
  line); the server keeps what it had and `served` does not move. A refused unload is only
  logged: the new version serves already.
- `served` starts as None: whatever the server holds at start-up (a crashed run's adapter, the
  bare base) is never trusted, so the first rollouts push first.
The trainer decides when to push (`max_staleness`); this module knows the server, not the loop.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wideseek.io import atomic_write_dir
from wideseek.llm.http import HttpEngine
from wideseek.llm.weight_push import (
    ServerKind,
    WeightPusher,
    WeightPushError,
    adapter_request,
    adapter_version_name,
)
from wideseek.train.rl.config import RolloutEngine

log = logging.getLogger(__name__)
PUSHED = "pushed"  # out_dir/pushed/v<k>/ unless rollout_engine.shared_dir says where


class RemotePolicy:
    def __init__(
        self,
        settings: RolloutEngine,
        out_dir: Path,
        tokenizer: Any,
        context_length: int,
        lora: bool,
    ) -> None:
        assert settings.kind != "local" and settings.base_url
        self.settings = settings
        self.kind: ServerKind = settings.kind  # type: ignore[assignment]  # not "local"
        self.lora = lora
        self.shared = Path(settings.shared_dir) if settings.shared_dir else out_dir / PUSHED
        self.server_dir = settings.server_dir or str(self.shared)
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.served: int | None = None
        self.base_model: str | None = settings.model

    def engine(self) -> HttpEngine:
        """A token-path engine sampling with the served version (open it in the loop that uses
        it; the caller closes it)."""
        from wideseek.llm.local import make_renderer

        assert self.served is not None and self.base_model is not None, "push before sampling"
        model, extra = self.base_model, {}
        if self.lora:
            adapter = adapter_version_name(self.settings.adapter, self.served)
            model, extra = adapter_request(self.kind, self.base_model, adapter)
        return HttpEngine(
            self.settings.base_url or "",
            model,
            renderer=make_renderer(self.tokenizer, self.context_length),
            timeout_s=self.settings.timeout_s,
            max_concurrency=self.settings.max_concurrency,
            extra_body=extra,
        )

    def push(self, version: int, write: Callable[[Path], None]) -> None:
        """Version `version`'s weights onto the server (module docstring)."""
        local = self.shared / f"v{version}"
        atomic_write_dir(write, local)
        asyncio.run(self._push(version, f"{self.server_dir.rstrip('/')}/v{version}"))
        previous, self.served = self.served, version
        if previous is not None and previous != version:
            shutil.rmtree(self.shared / f"v{previous}", ignore_errors=True)

    async def _push(self, version: int, path: str) -> None:
        if self.base_model is None:  # the server's first model, as HttpEngine picks it
            async with HttpEngine(self.settings.base_url or "") as probe:
                await probe.check()
                self.base_model = probe.model_name
        url = self.settings.base_url or ""
        async with WeightPusher(self.kind, url, timeout_s=self.settings.timeout_s) as pusher:
            if not self.lora:
                await pusher.reload_weights(path)
                return
            await pusher.load_adapter(adapter_version_name(self.settings.adapter, version), path)
            if self.served is not None and self.served != version:
                old = adapter_version_name(self.settings.adapter, self.served)
                try:
                    await pusher.unload_adapter(old)
                except WeightPushError as e:  # the new version serves already: not fatal
                    log.warning("%s (%s stays loaded)", e, old)
