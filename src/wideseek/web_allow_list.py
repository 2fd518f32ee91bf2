"""Allow-list entries of direct fetch: which private addresses, on which ports, may be opened.

An entry is a host name, an IP address or a CIDR network, each with an optional port:

    fake.test   fake.test:8080   127.0.0.1   127.0.0.1:8080   ::1   [::1]:8080
    10.0.0.0/8   10.0.0.0/8:8080   fd00::/8   [fd00::/8]:8080

Entries are origins, not hosts: one without a port allows only the scheme's default port
(80 for http, 443 for https), so allowing one local service never opens the machine's other
services. An IPv6 address with a port goes in brackets (`::1:8080` is itself an address).
A name matches the URL's host as written; an address or network matches the addresses the
host resolves to. This module is stdlib only and sits beside `web_config`, so the config
validates entries when it loads; the SSRF guard (`tools.web.ssrf_guard`) matches them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")
_FORMS = "expected host, host:port, IP, [IPv6]:port or CIDR network with an optional :port"


@dataclass(frozen=True)
class AllowRule:
    name: str | None  # a host name: lower case, no trailing dot
    network: IPNetwork | None  # or an address (a /32 or /128) or a network
    port: int | None  # None: the scheme's default port only

    def matches(self, host: str, ip: IPAddress, scheme: str, port: int) -> bool:
        wanted = self.port if self.port is not None else DEFAULT_PORTS.get(scheme)
        if port != wanted:
            return False
        if self.name is not None:
            return host == self.name
        return self.network is not None and ip in self.network


def parse_allow_rule(entry: str) -> AllowRule:
    """The rule an allow-list entry stands for; ValueError with one line saying what is wrong."""
    try:
        return _parse(entry.strip().lower())
    except ValueError as e:
        raise ValueError(f"allow-list entry {entry!r}: {e}; {_FORMS}") from None


def _parse(text: str) -> AllowRule:
    if not text:
        raise ValueError("empty")
    bracketed = text.startswith("[")
    host, port = _split_port(text)
    network = _network(host)
    if bracketed and (network is None or network.version != 6):
        raise ValueError("only IPv6 addresses go in brackets")
    if network is not None:
        return AllowRule(None, network, port)
    return AllowRule(_host_name(host), None, port)


def _split_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        inner, closed, rest = text[1:].partition("]")
        if not closed:
            raise ValueError("no closing ]")
        if not rest:
            return inner, None
        if not rest.startswith(":"):
            raise ValueError("only :port may follow ]")
        return inner, _port(rest[1:])
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _port(port)
    return text, None  # no colon, or a bare IPv6 address or network


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ValueError(f"bad port {text!r}")
    return int(text)


def _network(host: str) -> IPNetwork | None:
    """The address or network `host` writes, None for a name; ValueError for a bad one."""
    try:
        return ipaddress.ip_network(host, strict=False)  # 10.1.2.3/8 means 10.0.0.0/8
    except ValueError as e:
        if "/" in host or ":" in host:  # meant as an address or network, but is not one
            raise ValueError(f"bad address or network ({e})") from None
        return None


def _host_name(host: str) -> str:
    name = host.removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("not a host name (write international names in their xn-- form)")
    if labels[-1].isdigit():  # 10.0.0.256, 127.1: numbers that are not an IP address
        raise ValueError("not a valid IP address")
    return name
