"""`HostGuard`: decides, before any connection, whether direct fetch may open a URL.

A model (or a page it read) chooses the URLs that direct fetch opens, so without a guard it
could reach the machine's own services or the local network (cloud metadata at
169.254.169.254, an admin panel on 10.x). The guard:

1) refuses any scheme but http and https, and URLs with credentials in them;
2) resolves the host with `resolver` (a plain async function, patchable in tests) and refuses
   it if ANY of its addresses is loopback, private, link-local, multicast, reserved,
   unspecified or otherwise not globally routable. An IPv6 address that carries an IPv4 one
   (IPv4-mapped, 6to4, NAT64, Teredo) is judged by the IPv4 address it carries
   (`embedded_ipv4s`, the one place that unwraps them);
3) returns a `Target` pinned to the address it checked: the request goes to that IP with the
   original Host header and TLS server name, so a second DNS answer (rebinding) cannot swap in
   another address between the check and the connection.

The allow-list (`wideseek.web_allow_list`: host, host:port, IP or CIDR, origin-style ports)
exempts a private address from step 2 only on the port it names (or the scheme's default port).
Direct fetch calls `check` on the first URL and again on every redirect hop; a cached page is
vetted with `recheck` against the addresses recorded when it was fetched, with no DNS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

from wideseek.tools.web.errors import BlockedUrlError, WebToolError
from wideseek.web_allow_list import DEFAULT_PORTS, IPAddress, parse_allow_rule

# (host, port) -> the host's addresses as strings
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: prefixes /48 to /96 inside


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _rfc6052(value: int, prefix_len: int) -> ipaddress.IPv4Address:
    """The IPv4 address in a NAT64 address of prefix length 48, 56 or 64 (RFC 6052 2.2):
    the 32 bits after the prefix, skipping bits 64-71 (the zero "u" octet)."""
    squeezed = (value >> 64) << 56 | (value & (1 << 56) - 1)  # 120 bits, "u" taken out
    return ipaddress.IPv4Address(squeezed >> (120 - prefix_len - 32) & 0xFFFFFFFF)


def embedded_ipv4s(ip: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address leads to: IPv4-mapped (::ffff:a.b.c.d), 6to4
    (2002:AABB:CCDD::), NAT64 (64:ff9b::a.b.c.d, and every layout RFC 6052 allows inside the
    local-use 64:ff9b:1::/48, whose prefix length a URL does not tell) and Teredo (client
    address in the last 32 bits, inverted). Empty for anything else."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ()
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip.sixtofour is not None:  # 2002::/16
        return (ip.sixtofour,)
    if ip.teredo is not None:  # 2001::/32
        return (ip.teredo[1],)  # (server, client): traffic goes to the client
    last32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64_WELL_KNOWN:
        return (last32,)
    if ip in _NAT64_LOCAL:
        return (last32, *(_rfc6052(int(ip), n) for n in (48, 56, 64)))
    return ()


def _category(ip: IPAddress) -> str | None:
    # most specific first: Python also counts link-local, reserved and 0.0.0.0 as "private"
    for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:  # e.g. 100.64.0.0/10 (carrier-grade NAT), which is not "private"
        return "non-global"
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why connecting to `ip` is refused, or None when it is a public address. An address
    that carries IPv4 ones is judged by them (a 6to4 or Teredo wrapper of 127.0.0.1 is as
    loopback as 127.0.0.1)."""
    carried = embedded_ipv4s(ip)
    if not carried:
        return _category(ip)
    return next((p for p in map(_category, carried) if p), None)


@dataclass(frozen=True)
class Target:
    """Where a checked request really goes."""

    url: httpx.URL  # the original URL with the host replaced by the checked address
    headers: dict[str, str]  # Host: the original host
    extensions: dict[str, str]  # sni_hostname for https: certificates are checked by name
    addresses: tuple[str, ...]  # every address the host had, all judged: kept with the page


class HostGuard:
    def __init__(self, allowed_hosts: Iterable[str] = (), resolver: Resolver = system_resolver):
        self.resolver = resolver
        try:
            self._rules = [parse_allow_rule(entry) for entry in allowed_hosts]
        except ValueError as e:  # the config validates entries; this is for code that did not
            raise WebToolError(f"direct.allowed_hosts: {e}", kind="config") from None

    async def check(self, url: httpx.URL) -> Target:
        """A pinned Target for `url`, or BlockedUrlError saying why it is refused."""
        host, port = _origin(url)
        ips = await self._addresses(host, port)
        self._judge(url, host, port, ips)
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        return Target(
            url=url.copy_with(host=str(ips[0])),
            headers={"Host": url.netloc.decode("ascii")},
            extensions=extensions,
            addresses=tuple(str(ip) for ip in ips),
        )

    def recheck(self, url: str, addresses: Iterable[str]) -> None:
        """Judge a URL fetched earlier, by the addresses it had then, under today's rules:
        returns, or raises BlockedUrlError (ValueError for a record that makes no sense)."""
        parsed = httpx.URL(url)
        host, port = _origin(parsed)
        ips = [ipaddress.ip_address(a) for a in addresses]
        if not ips:
            raise ValueError("no recorded addresses")
        self._judge(parsed, host, port, ips)

    def _judge(self, url: httpx.URL, host: str, port: int, ips: list[IPAddress]) -> None:
        for ip in ips:
            problem = address_problem(ip)
            if problem and not any(r.matches(host, ip, url.scheme, port) for r in self._rules):
                raise BlockedUrlError(_refusal(url, host, port, ip, problem))

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]  # a literal address needs no DNS
        except ValueError:
            pass
        try:
            answers = await self.resolver(host, port)
        except OSError as e:
            raise WebToolError(f"cannot resolve host {host}: {e.strerror or e}", kind="dns") from e
        ips: list[IPAddress] = []
        for answer in answers:
            try:
                ips.append(ipaddress.ip_address(answer.split("%", 1)[0]))  # drop an IPv6 zone
            except ValueError:
                continue
        if not ips:
            raise WebToolError(f"cannot resolve host {host}: no addresses", kind="dns")
        return ips


def _origin(url: httpx.URL) -> tuple[str, int]:
    """(host, port) of an http(s) URL without credentials; BlockedUrlError otherwise."""
    if url.scheme not in DEFAULT_PORTS:
        raise BlockedUrlError(f"refused {url}: only http and https URLs can be opened")
    if url.userinfo:
        raise BlockedUrlError(
            f"refused {url.copy_with(username=None, password=None)}: "
            "credentials in URLs are not allowed"
        )
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    if not host:
        raise BlockedUrlError(f"refused {url}: no host")
    return host, url.port or DEFAULT_PORTS[url.scheme]


def _refusal(url: httpx.URL, host: str, port: int, ip: IPAddress, problem: str) -> str:
    a = "an" if problem[0] in "aeiou" else "a"
    literal = host == str(ip)
    what = f"{ip} is" if literal else f"host {host} resolves to"
    carried = embedded_ipv4s(ip)
    via = f" (it carries {', '.join(map(str, carried))})" if carried else ""
    seen = "" if literal else f" ({ip})"
    origin = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return (
        f"refused {url}: {what} {a} {problem} address{seen}{via}; "
        f"to allow it, add {origin} to direct.allowed_hosts"
    )
