"""Which endpoint addresses the application may send requests to.

The host of an endpoint URL is resolved (DNS, or a numeric form such as ``2852039166``)
and every address it resolves to is checked, so a friendly name cannot hide a cloud
metadata address. Link-local and metadata addresses are refused unless the operator
allows them; loopback, private, shared (100.64.0.0/10), multicast, reserved and other
non-global addresses are allowed unless the operator refuses them (self-hosted models
usually live there).

An IPv6 address that carries an IPv4 address (IPv4-mapped or -compatible, NAT64, 6to4,
Teredo) is judged by the IPv4 address it leads to, so ``64:ff9b::a9fe:a9fe`` is the
metadata address ``169.254.169.254`` however it is spelled.

The same judgement holds when each connection is made: `AddressPolicy.allowed_addresses` is
the transports' connect hook, so a name whose DNS answer changes after the check is judged
again, and the connection goes only to an address that passed.

>>> AddressPolicy().problem("::ffff:169.254.169.254") is not None
True
>>> AddressPolicy(refuse_private=True).problem("100.64.0.1") is not None
True
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..._transports import ConnectRefused
from ...errors import ConfigurationError

__all__ = ["AddressPolicy", "EgressRefused", "Resolver", "system_resolver"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Cloud metadata services that do not sit in a link-local range.
_METADATA = {
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud metadata
}


def _not_public(ip: IPAddress) -> bool:
    # Python 3.11 calls 100.64.0.0/10 neither private nor global, and multicast (and the
    # deprecated IPv6 site-local range) global: each property is asked on its own.
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_unspecified
        or ip.is_reserved
        or ip.is_multicast
        or not ip.is_global
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


class EgressRefused(ConfigurationError):
    """The endpoint URL points at an address the application does not send requests to."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, through the system resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated, but still a spelling
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT (RFC 2765)
# Where RFC 6052 puts the IPv4 address behind a prefix of each length the local-use NAT64
# prefix 64:ff9b:1::/48 may be given: bit ranges counted from the top of the address.
# Below /96, bits 64-71 (the "u" octet) sit between the ranges, and must be zero.
_RFC6052_LAYOUTS = (
    ((48, 64), (72, 88)),
    ((56, 64), (72, 96)),
    ((72, 104),),
    ((96, 128),),
)


def _bits(value: int, start: int, stop: int) -> int:
    """Bits ``start`` to ``stop`` (exclusive) of a 128-bit ``value``, counted from the top."""
    return (value >> (128 - stop)) & ((1 << (stop - start)) - 1)


def _local_use_nat64(value: int) -> list[IPAddress]:
    # The translator's prefix length is not visible in the address, so every layout
    # whose "u" octet and suffix are zero is a possible reading; each one is judged.
    # The /96 reading always qualifies, so there is at least one.
    readings: list[IPAddress] = []
    for ranges in _RFC6052_LAYOUTS:
        end = ranges[-1][1]
        if end < 128 and (_bits(value, 64, 72) or _bits(value, end, 128)):
            continue
        v4 = 0
        for start, stop in ranges:
            v4 = (v4 << (stop - start)) | _bits(value, start, stop)
        readings.append(ipaddress.IPv4Address(v4))
    return readings


def _unwrap(address: IPAddress) -> list[IPAddress]:
    """The addresses a connection to ``address`` really leads to.

    An IPv6 address that embeds an IPv4 address leads to that IPv4 address (or, for the
    local-use NAT64 prefix, to one of its possible readings); any other address is itself.
    """
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    value = int(address)
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _IPV4_TRANSLATED or address in _NAT64_WELL_KNOWN:
        return [ipaddress.IPv4Address(value & 0xFFFFFFFF)]
    if address in _IPV4_COMPATIBLE and value > 1:  # :: and ::1 are not IPv4 addresses
        return [ipaddress.IPv4Address(value)]
    if address in _NAT64_LOCAL_USE:
        return _local_use_nat64(value)
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return [address.teredo[1]]  # (server, client): the client is where traffic goes
    return [address]


@dataclass(frozen=True)
class AddressPolicy:
    """The operator's choice: allow link-local / metadata, refuse loopback / private."""

    allow_link_local: bool = False
    refuse_private: bool = False
    resolver: Resolver = system_resolver

    def problem(self, address: str) -> str | None:
        """Why ``address`` (an IP literal) is refused, or None when it is allowed.

        The address is judged by what it is (``ipaddress``'s properties), after unwrapping
        any IPv4 address it carries; it is refused if any reading of it is.
        """
        given = ipaddress.ip_address(address.split("%", 1)[0])
        for ip in _unwrap(given):
            shown = str(ip) if ip == given else f"{given} (which leads to {ip})"
            if not self.allow_link_local and (ip.is_link_local or ip in _METADATA):
                return (
                    f"{shown} is a link-local or cloud metadata address; the application "
                    "does not send requests there (start it with --allow-link-local to "
                    "allow it)"
                )
            if self.refuse_private and _not_public(ip):
                return (
                    f"{shown} is a loopback, private or other non-public address (shared, "
                    "multicast, reserved or unspecified), and this application refuses "
                    "those (--refuse-private)"
                )
        return None

    async def check_url(self, url: str) -> None:
        """Raise ``EgressRefused`` if the host of ``url`` resolves to a refused address.

        A host that does not resolve is left to the request, which reports it clearly.
        """
        parts = urlsplit(url)
        host = parts.hostname
        if not host:
            return
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = await self.resolver(host, port)
            except (OSError, UnicodeError):
                return
        for address in addresses:
            reason = self.problem(address)
            if reason:
                shown = host if host == address else f"{host} (resolves to {address})"
                raise EgressRefused(f"the endpoint host {shown} is refused: {reason}")

    async def allowed_addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` a connection may be made to: the transports' connect hook.

        The check before a request (`check_url`) resolves the host once; a host whose DNS
        answer changes between that check and the connection (DNS rebinding) would slip
        through, so the transports ask this at each new connection and connect only to an
        address it returned. An IP literal is judged as written; a name is resolved by the
        policy's resolver, whose ``OSError`` goes on as it is (a failed lookup).
        Raises ``ConnectRefused`` when no address is allowed.
        """
        bare = host.strip("[]")
        try:
            ipaddress.ip_address(bare.split("%", 1)[0])
        except ValueError:
            addresses = await self.resolver(host, port)
        else:
            addresses = [bare]
        allowed = [address for address in addresses if self.problem(address) is None]
        if not allowed:
            reason = self.problem(addresses[0]) if addresses else "it resolves to no usable address"
            raise ConnectRefused(f"the endpoint host {host} is refused: {reason}")
        return allowed
