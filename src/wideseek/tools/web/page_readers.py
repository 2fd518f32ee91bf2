"""Page readers behind `access`: a URL → a Page (title, text), with the fetch's facts.

- `JinaReader`: GET {base}/{url} from the Jina Reader service, which fetches and renders the
  page on its side and answers markdown; with `Accept: application/json` the answer is
  `{data: {title, url, content}}` (a plain-text answer, "Title: ...\\nURL Source: ...\\n
  Markdown Content: ...", is read too). The key, when set, is a Bearer token.
- `DirectFetcher`: fetches the page itself. Redirects are followed by hand so `HostGuard`
  checks every hop, with its port, before connecting (and pins the connection to the checked
  address); the chain of hops and their addresses is kept with the page, so that a cached
  page is served only if today's guard would still allow every hop (`vet_cached`); the
  body is streamed and cut at `max_bytes`; types with no text are refused from the header,
  before the body is read; HTML → main text (trafilatura), PDF → text (pypdf), anything
  else textual decoded by its charset (see `page_text`).

Both refuse non-http(s) URLs. Sending, limits and retries are the `ThrottledHttp`'s; caching
and audit are `WebBackend`'s. A reader knows nothing about prompts or truncation for the model.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import httpx

from wideseek.tools.base import Page
from wideseek.tools.web.errors import ApiKey, BlockedUrlError, WebToolError
from wideseek.tools.web.fetched import Fetched
from wideseek.tools.web.page_text import check_declared_type, document_text, media_type
from wideseek.tools.web.ssrf_guard import HostGuard, Target
from wideseek.tools.web.throttled_http import (
    ThrottledHttp,
    check_status,
    read_capped,
    send_capped,
)
from wideseek.web_config import DirectFetchSettings, ServiceSettings

_REDIRECTS = {301, 302, 303, 307, 308}
_ACCEPT = "text/html,application/xhtml+xml,application/pdf;q=0.9,text/plain;q=0.8,*/*;q=0.5"


def web_url(url: str) -> httpx.URL:
    """`url` parsed, or BlockedUrlError when it is not an absolute http(s) URL."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as e:
        raise BlockedUrlError(f"not a valid URL: {url!r} ({e})", kind="bad_url") from e
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BlockedUrlError(f"refused {url!r}: only absolute http and https URLs can be opened")
    return parsed


class PageReader(ABC):
    name: ClassVar[str]
    base_url: str = ""  # the service asked, part of the cache key; direct fetch asks none

    def __init__(self, http: ThrottledHttp, max_bytes: int) -> None:
        self.http = http
        self.max_bytes = max_bytes

    @property
    def key(self) -> ApiKey | None:
        return self.http.key

    def missing_key(self) -> str | None:
        return None

    def vet_cached(self, facts: dict[str, Any]) -> bool:
        """May a cached page with these fetch facts be served? Readers that fetch through a
        service have nothing of their own to check."""
        return True

    @abstractmethod
    async def read(self, url: str) -> Fetched[Page]: ...


class JinaReader(PageReader):
    name = "jina"

    def __init__(self, settings: ServiceSettings, http: ThrottledHttp, max_bytes: int) -> None:
        super().__init__(http, max_bytes)
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"JinaReader({self.base_url!r}, key={self.key!r})"

    def missing_key(self) -> str | None:
        if self.settings.key_required and self.key is None:
            return f"no API key: set the environment variable {self.settings.key_env}"
        return None

    async def read(self, url: str) -> Fetched[Page]:
        problem = self.missing_key()
        if problem:
            raise WebToolError(f"jina: {problem}", kind="missing_key")
        target = str(web_url(url))
        headers = {"Accept": "application/json"}
        if self.key is not None:
            headers["Authorization"] = f"Bearer {self.key.reveal()}"

        async def attempt(client: httpx.AsyncClient) -> Fetched[Page]:
            request = client.build_request("GET", f"{self.base_url}/{target}", headers=headers)
            response, body, truncated = await send_capped(client, request, self.max_bytes)
            ctype = response.headers.get("content-type")
            page = _jina_page(body, ctype, target, truncated)
            return Fetched(
                value=page,
                status=response.status_code,
                final_url=page.url,
                bytes=len(body),
                truncated=truncated,
                content_type=ctype,
            )

        fetched, attempts = await self.http.run(attempt)
        fetched.attempts = attempts
        return fetched


def _jina_page(body: bytes, content_type: str | None, url: str, truncated: bool) -> Page:
    text = body.decode("utf-8", "replace")
    if media_type(content_type) == "application/json" and not truncated:
        try:
            data: Any = json.loads(text)["data"]
            return Page(
                url=str(data.get("url") or url),
                title=str(data.get("title") or ""),
                text=str(data.get("content") or data.get("text") or ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            problem = f"answer has an unexpected shape ({type(e).__name__}: {e})"
            raise WebToolError(problem, kind="bad_answer") from e
    # The plain-text form: a few "Name: value" header lines, then the markdown.
    title, source = "", url
    head, sep, content = text.partition("Markdown Content:")
    if not sep:
        return Page(url=url, title="", text=text.strip())
    for line in head.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "Title":
            title = value.strip()
        elif name.strip() == "URL Source":
            source = value.strip() or url
    return Page(url=source, title=title, text=content.strip())


class DirectFetcher(PageReader):
    name = "direct"

    def __init__(
        self, settings: DirectFetchSettings, http: ThrottledHttp, guard: HostGuard, max_bytes: int
    ) -> None:
        super().__init__(http, max_bytes)
        self.settings = settings
        self.guard = guard

    def __repr__(self) -> str:
        redirects = self.settings.max_redirects
        return f"DirectFetcher(max_bytes={self.max_bytes}, max_redirects={redirects})"

    async def read(self, url: str) -> Fetched[Page]:
        start = web_url(url)

        async def attempt(client: httpx.AsyncClient) -> Fetched[bytes]:
            current, chain = start, []
            for hop in range(self.settings.max_redirects + 1):
                target = await self._check_hop(current, chain)  # 1) every hop, before connecting
                chain.append({"url": str(current), "addresses": list(target.addresses)})
                request = client.build_request(
                    "GET",
                    target.url,
                    headers={**target.headers, "Accept": _ACCEPT},
                    extensions=target.extensions,
                )
                response = await _send(client, request, current)
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:  # 2) next hop
                        current = _next_hop(current, location)
                        continue
                    await check_status(response)
                    ctype = response.headers.get("content-type")
                    check_declared_type(ctype)  # 3) refuse images etc. unread
                    body, truncated = await read_capped(response, self.max_bytes)  # 4) capped
                finally:
                    await response.aclose()
                return Fetched(
                    value=body,
                    status=response.status_code,
                    final_url=str(current),
                    bytes=len(body),
                    truncated=truncated,
                    content_type=ctype,
                    redirects=hop,
                    chain=chain,
                )
            raise WebToolError(
                f"more than {self.settings.max_redirects} redirects from {start}",
                kind="too_many_redirects",
            )

        raw, attempts = await self.http.run(attempt)
        try:  # 5) text out of the bytes, off the event loop (trafilatura and pypdf are slow)
            title, text, _ = await asyncio.to_thread(
                document_text, raw.value, raw.content_type, raw.final_url, truncated=raw.truncated
            )
        except WebToolError as e:
            message = f"direct: {raw.final_url}: {e}"
            raise WebToolError(message, kind=e.kind, attempts=attempts) from e
        return raw.with_value(Page(url=raw.final_url, title=title, text=text), attempts=attempts)

    async def _check_hop(self, url: httpx.URL, chain: list[dict[str, Any]]) -> Target:
        try:
            return await self.guard.check(url)
        except BlockedUrlError as e:
            if not chain:
                raise
            raise BlockedUrlError(f"{e} (redirected from {chain[-1]['url']})") from None

    def vet_cached(self, facts: dict[str, Any]) -> bool:
        """True when today's guard allows every recorded hop of a cached page (judged by the
        addresses each hop had then: no DNS, so replay works offline); BlockedUrlError when
        it refuses one; False when the record cannot tell (an entry from before chains were
        kept, or a chain longer than today's redirect limit): then the page is fetched again."""
        chain = facts.get("chain")
        try:
            if not chain or chain[-1]["url"] != facts["final_url"]:
                return False
            if len(chain) > self.settings.max_redirects + 1:
                return False
            for hop in chain:
                self.guard.recheck(hop["url"], hop["addresses"])
        except BlockedUrlError as e:
            raise BlockedUrlError(f"direct: {e} (a cached page, checked again today)") from None
        except (KeyError, TypeError, ValueError, httpx.InvalidURL):
            return False
        return True


async def _send(
    client: httpx.AsyncClient, request: httpx.Request, url: httpx.URL
) -> httpx.Response:
    try:
        return await client.send(request, stream=True)
    except httpx.RemoteProtocolError as e:
        # httpx reads a redirect's Location even when it does not follow it, and calls a
        # Location that is no URL (http://0177.0.0.1/) a protocol error: a refusal, not a fault
        # worth retrying.
        if not str(e).startswith("Invalid URL in location header"):
            raise
        message = f"refused a redirect from {url}: {e}"
        raise BlockedUrlError(message, kind="bad_url") from None


def _next_hop(current: httpx.URL, location: str) -> httpx.URL:
    try:
        return current.join(location)
    except httpx.InvalidURL as e:  # 0177.0.0.1 and other hosts that are not hosts
        message = f"refused a redirect from {current} to {location!r}: not a valid URL ({e})"
        raise BlockedUrlError(message, kind="bad_url") from None
