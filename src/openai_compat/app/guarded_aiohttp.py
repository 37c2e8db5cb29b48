"""The application's HTTP transport: the core's aiohttp pool, held to the address policy.

``execute_model``, the connection checks and runs all send through the aiohttp transport the
CLI's batch runs use: per request it costs about half the CPU of httpx's client (issue 14,
``docs/performance.md``). The policy holds at connection time, as with `guarded_client`:

- a host name is resolved by the policy's resolver, and only the addresses the policy allows
  are handed to aiohttp, so a name whose DNS answer changes after the check before the
  request (DNS rebinding) is still refused when the connection is made;
- an IP literal, which aiohttp connects to without resolving, is judged before the first
  request to its URL;
- the environment's proxies are not used (as with `guarded_client`, whose transport is given:
  httpx ignores them then); a configuration with a proxy gets its own guarded httpx client.
"""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from .._transports._aiohttp import AiohttpTransport
from .._transports._base import FailureKind, TransportFailure
from .egress import AddressPolicy

__all__ = ["GuardedAiohttpTransport"]


def _refusal(host: str, reason: str) -> TransportFailure:
    # Not an OSError: aiohttp would report that as a failure to resolve the name.
    return TransportFailure(FailureKind.CONNECT, f"the endpoint host {host} is refused: {reason}")


class _GuardedResolver(AbstractResolver):
    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        # OSError (a failed lookup) goes on as it is: aiohttp reports it as a DNS failure.
        addresses = await self._policy.resolver(host, port)
        results: list[ResolveResult] = []
        for address in addresses:
            kind = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family not in (socket.AF_UNSPEC, kind):
                continue
            if self._policy.problem(address) is None:
                results.append(
                    ResolveResult(
                        hostname=host,
                        host=address,
                        port=port,
                        family=kind,
                        proto=0,
                        flags=socket.AI_NUMERICHOST,
                    )
                )
        if not results:
            reason = self._policy.problem(addresses[0]) if addresses else None
            raise _refusal(host, reason or "it resolves to no usable address")
        return results

    async def close(self) -> None:
        return None


class GuardedAiohttpTransport(AiohttpTransport):
    """`AiohttpTransport` whose connections go only to addresses ``policy`` allows."""

    def __init__(self, concurrency: int, policy: AddressPolicy) -> None:
        super().__init__(concurrency)
        self._policy = policy

    def _connector(self) -> aiohttp.TCPConnector:
        return aiohttp.TCPConnector(limit=self._limit, resolver=_GuardedResolver(self._policy))

    def _vet(self, url: yarl.URL) -> None:
        host = (url.host or "").strip("[]")
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return  # a name: judged by the resolver, at each connection
        reason = self._policy.problem(host)
        if reason is not None:
            raise _refusal(host, reason)

    def _proxy_for(self, url: yarl.URL) -> str | None:
        return None  # the environment's proxies are not used (see the module's docstring)
