"""The HTTP transport of runs: the batch core's aiohttp pool, held to the address policy.

A run sends through the same aiohttp transport as the CLI (its speed), with a resolver
that only hands out addresses the application's `AddressPolicy` allows, so a host whose
DNS answer changes after the check before the run (DNS rebinding) is still refused at
connection time. An IP literal is not resolved: the check before the run judged it.
"""

from __future__ import annotations

import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from .._transports._aiohttp import AiohttpTransport
from .egress import AddressPolicy

__all__ = ["GuardedAiohttpTransport"]


class _GuardedResolver(AbstractResolver):
    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if self._policy.problem(r["host"]) is None]
        if not allowed:
            reason = self._policy.problem(found[0]["host"]) if found else "no address"
            raise OSError(f"the endpoint host {host} is refused: {reason}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class GuardedAiohttpTransport(AiohttpTransport):
    """`AiohttpTransport` whose connections go only to addresses ``policy`` allows."""

    def __init__(self, concurrency: int, policy: AddressPolicy) -> None:
        super().__init__(concurrency)
        self._policy = policy

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._limit, resolver=_GuardedResolver(self._policy))
        session = aiohttp.ClientSession(
            connector=connector, trust_env=False, skip_auto_headers=("User-Agent",)
        )
        self._session = session
        return session
