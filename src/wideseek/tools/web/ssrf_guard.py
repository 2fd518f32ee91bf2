"""`HostGuard`: decides, before any connection, whether direct fetch may open a URL.

A model (or a page it read) chooses the URLs that direct fetch opens, so without a guard it
could reach the machine's own services or the local network (cloud metadata at
169.254.169.254, an admin panel on 10.x). The guard:

1) refuses any scheme but http and https, and URLs with credentials in them;
2) resolves the host with `resolver` (a plain async function, patchable in tests) and refuses
   it if ANY of its addresses is loopback, private, link-local, multicast, reserved,
   unspecified or otherwise not globally routable (IPv4-mapped IPv6 is unwrapped first);
3) returns a `Target` pinned to the address it checked: the request goes to that IP with the
   original Host header and TLS server name, so a second DNS answer (rebinding) cannot swap in
   another address between the check and the connection.

Hosts in the allow-list (names, IP addresses or CIDR networks) skip step 2's refusal but are
still resolved by `resolver` and pinned, so tests can name fake hosts without real DNS.
Direct fetch calls `check` on the first URL and again on every redirect hop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

from wideseek.tools.web.errors import BlockedUrlError, WebToolError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the host's addresses as strings
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_problem(ip: IPAddress) -> str | None:
    """Why connecting to `ip` is refused, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # most specific first: Python also counts link-local, reserved and 0.0.0.0 as "private"
    for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:  # e.g. 100.64.0.0/10 (carrier-grade NAT), which is not "private"
        return "non-global"
    return None


@dataclass(frozen=True)
class Target:
    """Where a checked request really goes."""

    url: httpx.URL  # the original URL with the host replaced by the checked address
    headers: dict[str, str]  # Host: the original host
    extensions: dict[str, str]  # sni_hostname for https: certificates are checked by name


class HostGuard:
    def __init__(self, allowed_hosts: Iterable[str] = (), resolver: Resolver = system_resolver):
        self.resolver = resolver
        self._names: set[str] = set()
        self._networks: list[IPNetwork] = []
        for entry in allowed_hosts:
            entry = entry.strip().lower().strip("[]")
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._names.add(entry.rstrip("."))

    def _allowed(self, host: str, ip: IPAddress) -> bool:
        return host in self._names or any(ip in net for net in self._networks)

    async def check(self, url: httpx.URL) -> Target:
        """A pinned Target for `url`, or BlockedUrlError saying why it is refused."""
        if url.scheme not in ("http", "https"):
            raise BlockedUrlError(f"refused {url}: only http and https URLs can be opened")
        if url.userinfo:
            raise BlockedUrlError(
                f"refused {url.copy_with(username=None, password=None)}: "
                "credentials in URLs are not allowed"
            )
        host = url.raw_host.decode("ascii").lower().rstrip(".")
        if not host:
            raise BlockedUrlError(f"refused {url}: no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        ips = await self._addresses(host, port)
        for ip in ips:
            problem = address_problem(ip)
            if problem and not self._allowed(host, ip):
                a = "an" if problem[0] in "aeiou" else "a"
                what = f"{ip} is" if host == str(ip) else f"host {host} resolves to"
                raise BlockedUrlError(
                    f"refused {url}: {what} {a} {problem} address"
                    + ("" if host == str(ip) else f" ({ip})")
                    + "; add the host to direct.allowed_hosts to allow it"
                )
        pinned = ips[0]
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        return Target(
            url=url.copy_with(host=str(pinned)),
            headers={"Host": url.netloc.decode("ascii")},
            extensions=extensions,
        )

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]  # a literal address needs no DNS
        except ValueError:
            pass
        try:
            answers = await self.resolver(host, port)
        except OSError as e:
            raise WebToolError(f"cannot resolve host {host}: {e.strerror or e}") from e
        ips: list[IPAddress] = []
        for answer in answers:
            try:
                ips.append(ipaddress.ip_address(answer.split("%", 1)[0]))  # drop an IPv6 zone
            except ValueError:
                continue
        if not ips:
            raise WebToolError(f"cannot resolve host {host}: no addresses")
        return ips
