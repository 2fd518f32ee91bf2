"""The bytes of a fetched document → (title, text): HTML main text, PDF text, plain text.

`document_kind` decides from the Content-Type (sniffing the first bytes when it is missing or
generic) whether a body is HTML, PDF or text; anything else (images, archives, video) is
refused with a clear error. Text is decoded by, in order: a byte-order mark, the declared
charset (HTTP header, then an HTML <meta>), strict UTF-8, charset-normalizer's guess, and
finally cp1252 with replacement — so a page in Shift_JIS or windows-1251 reads as its author
wrote it. HTML goes through trafilatura (boilerplate removed, tables kept), falling back to
all visible text when trafilatura finds no main content; PDFs through pypdf.

Pure functions of bytes, CPU-bound (callers run them in a thread), no I/O, no size policy:
the fetcher has already cut the body to its byte cap and says so. The libraries (the `web`
extra) are imported on first use, so importing this module costs nothing.
"""

from __future__ import annotations

import codecs
import html as html_lib
import io
import re
from typing import Literal

from wideseek.tools.web.errors import WebToolError

Kind = Literal["html", "pdf", "text"]

_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_PDF_TYPES = {"application/pdf", "application/x-pdf"}
_TEXT_TYPES = {"application/json", "application/xml", "application/ld+json", "application/rss+xml"}
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
# Browsers read these labels as windows-1252, and so do we (it is a superset).
_AS_CP1252 = {"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii", "iso8859-1"}
# Undeclared, non-UTF-8 bytes that a detector calls "some Latin code page": on short texts it
# picks among these almost at random (cp1257 for French), so take windows-1252, as browsers
# do. Its guesses for other scripts (Cyrillic, Greek, CJK multi-byte) are reliable and kept.
_LATIN_GUESSES = {
    "cp1250", "cp1252", "cp1254", "cp1257", "cp1258", "latin_1", "mac_latin2", "mac_roman",
    "cp437", "cp775", "cp850", "cp858",
    *(f"iso8859_{n}" for n in (2, 3, 4, 9, 10, 13, 14, 15, 16)),
}  # fmt: skip
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def declared_charset(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def document_kind(content_type: str | None, head: bytes) -> Kind:
    """What the body is; WebToolError for types that have no text to read."""
    mtype = media_type(content_type)
    if mtype in _HTML_TYPES:
        return "html"
    if mtype in _PDF_TYPES:
        return "pdf"
    if mtype.startswith("text/") or mtype in _TEXT_TYPES or mtype.endswith(("+xml", "+json")):
        return "text"
    if mtype in _GENERIC_TYPES:  # no usable type given: look at the bytes
        start = head.lstrip()[:512].lower()
        if start.startswith(b"%pdf-"):
            return "pdf"
        if start.startswith((b"<!doctype html", b"<html")) or b"<body" in start:
            return "html"
        if b"\x00" not in head[:1024]:
            return "text"
    raise WebToolError(
        f"unsupported content type {mtype or 'unknown'}: no text to read", kind="unsupported_type"
    )


def check_declared_type(content_type: str | None) -> None:
    """Refuse, from the header alone, a declared type with no text (an image, a zip), so its
    body is never downloaded; generic or missing types wait for `document_kind`'s sniffing."""
    if media_type(content_type) not in _GENERIC_TYPES:
        document_kind(content_type, b"")


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().lower()
    if label in _AS_CP1252:
        return "cp1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _utf8(body: bytes, truncated: bool) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        # a body cut at the byte cap may end in half a character: that is still UTF-8
        if truncated and e.start >= len(body) - 3:
            return body[: e.start].decode("utf-8")
        return None


def decode_text(body: bytes, content_type: str | None, *, truncated: bool = False) -> str:
    """`body` as text, by BOM, declared charset, UTF-8, detection, then cp1252."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le")):
        if body.startswith(bom):
            return body[len(bom) :].decode(codec, "replace")
    if body.startswith(codecs.BOM_UTF16_BE):
        return body[2:].decode("utf-16-be", "replace")
    declared = _codec(declared_charset(content_type))
    if declared is None and media_type(content_type) in _HTML_TYPES | _GENERIC_TYPES:
        meta = _META_CHARSET.search(body[:4096])
        declared = _codec(meta.group(1).decode("ascii", "replace")) if meta else None
    if declared is not None:
        return body.decode(declared, "replace")
    text = _utf8(body, truncated)
    if text is not None:
        return text
    import charset_normalizer

    guess = charset_normalizer.from_bytes(body[:65536]).best()
    if guess is not None and guess.encoding and guess.encoding not in _LATIN_GUESSES:
        return body.decode(guess.encoding, "replace")
    return body.decode("cp1252", "replace")


def html_to_text(html: str, url: str | None = None) -> tuple[str, str]:
    """(title, main text) of an HTML page."""
    import trafilatura  # here, not at the top: it takes half a second to import

    doc = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_tables=True, include_comments=False
    )
    title = getattr(doc, "title", None) or ""
    text = getattr(doc, "text", None) or ""
    if not text.strip():  # short or odd pages: no "main content", but still text
        text = trafilatura.html2txt(html) or ""
    if not title:
        found = _TITLE.search(html[:65536])
        title = " ".join(html_lib.unescape(found.group(1)).split()) if found else ""
    return title, text.strip()


def pdf_to_text(body: bytes, *, truncated: bool = False) -> tuple[str, str]:
    """(title, text) of a PDF; WebToolError when it cannot be read."""
    import pypdf

    if truncated:
        raise WebToolError(
            "PDF larger than the byte cap (max_bytes): a cut PDF cannot be read", kind="too_large"
        )
    try:
        reader = pypdf.PdfReader(io.BytesIO(body))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or ""
    except Exception as e:  # pypdf raises many kinds on broken files
        problem = f"PDF could not be read ({type(e).__name__}: {e})"
        raise WebToolError(problem, kind="unreadable") from e
    return str(title), "\n\n".join(p.strip() for p in pages if p.strip())


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def document_text(
    body: bytes, content_type: str | None, url: str, *, truncated: bool = False
) -> tuple[str, str, Kind]:
    """(title, text, kind) of a fetched body."""
    kind = document_kind(content_type, body[:1024])
    if kind == "pdf":
        title, text = pdf_to_text(body, truncated=truncated)
        return title or _first_line(text), text, kind
    decoded = decode_text(body, content_type, truncated=truncated)
    if kind == "html":
        title, text = html_to_text(decoded, url)
        return title, text, kind
    return _first_line(decoded), decoded.strip(), kind
