"""`WebToolError`, the one error the web backends raise, and `ApiKey`, a key that never shows.

A `WebToolError` says which backend failed and why on one line, and carries the audit record of
the failed request (`.audit`) so a trace can keep it, with the kind of failure (`.kind`, one of
`ERROR_KINDS`) and the HTTP tries it took (`.attempts`). The model-facing tools turn it into an
error result for the model. Keys are read from the environment into `ApiKey`, whose repr and
str are masked; `ApiKey.scrub` removes the key from any text before it goes into a message.
"""

from __future__ import annotations

import os
from typing import Any

from wideseek.errors import WideseekError

# What went wrong, for audit records: a trace can count failures by kind without parsing text.
ERROR_KINDS = (
    "timeout",  # a try, or the whole call's deadline, ran out
    "refused_by_guard",  # the SSRF guard refused a URL (first, redirect hop or cached chain)
    "http_status",  # the server answered a status that is not a success
    "too_large",  # the answer was over the byte cap and cannot be used cut
    "unreachable",  # no connection
    "cut_short",  # the connection broke off mid-answer
    "dns",  # the host name did not resolve
    "bad_url",  # not an absolute http(s) URL
    "bad_answer",  # the answer is not of the shape the API promises
    "unsupported_type",  # a page type with no text (image, video, ...)
    "unreadable",  # a document of a known type that could not be read (a broken PDF)
    "too_many_redirects",
    "missing_key",
    "replay_miss",  # replay mode and no usable cached answer
    "config",
    "error",  # anything else
)


class WebToolError(WideseekError, RuntimeError):
    """A web search or page access that did not work; the message says which backend and why."""

    default_kind = "error"

    def __init__(
        self,
        message: str,
        audit: dict[str, Any] | None = None,
        *,
        kind: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.audit = audit
        self.kind = kind or self.default_kind
        self.attempts = attempts  # HTTP tries made before it failed


class BlockedUrlError(WebToolError):
    """A URL refused before any connection: bad scheme, or a host on a private address."""

    default_kind = "refused_by_guard"


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
