"""The lifecycle of an object that owns one `httpx.AsyncClient`.

Contract: a class that sets `self._client` and derives from `OwnsHttpClient` gets `close()`
and `async with obj: ...` (closing on the way out), so every HTTP client of wideseek (the
engine, the weight pusher) releases its connections the same way.
"""

from __future__ import annotations

from typing import Self

import httpx


class OwnsHttpClient:
    _client: httpx.AsyncClient

    async def close(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
