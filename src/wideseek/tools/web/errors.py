"""`WebToolError`, the one error the web backends raise, and `ApiKey`, a key that never shows.

A `WebToolError` says which backend failed and why on one line, and carries the audit record of
the failed request (`.audit`) so a trace can keep it. The model-facing tools turn it into an
error result for the model. Keys are read from the environment into `ApiKey`, whose repr and
str are masked; `ApiKey.scrub` removes the key from any text before it goes into a message.
"""

from __future__ import annotations

import os
from typing import Any

from wideseek.errors import WideseekError


class WebToolError(WideseekError, RuntimeError):
    """A web search or page access that did not work; the message says which backend and why."""

    def __init__(self, message: str, audit: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.audit = audit


class BlockedUrlError(WebToolError):
    """A URL refused before any connection: bad scheme, or a host on a private address."""


class ApiKey:
    """A secret from the environment. Masked in repr/str so it cannot leak into logs or traces."""

    __slots__ = ("_value", "env")

    def __init__(self, value: str, env: str) -> None:
        self._value = value
        self.env = env

    @classmethod
    def from_env(cls, env: str | None) -> ApiKey | None:
        value = os.environ.get(env, "").strip() if env else ""
        return cls(value, env) if value and env else None

    def reveal(self) -> str:
        """The key itself: only for building a request header."""
        return self._value

    def scrub(self, text: str) -> str:
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return f"ApiKey(${self.env}=***)"

    __str__ = __repr__
