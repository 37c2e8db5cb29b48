"""The guard: the transports the application sends through, each connection of which the
address policy vets (`AddressPolicy.allowed_addresses` as the transports' connect hook).

The check before a request (`AddressPolicy.check_url`) judges the endpoint's host once; the
guard judges again at every new connection, so a DNS answer that changes after the check
never takes a request to a refused address. No environment proxy is used: one would be a
way around the guard.
"""

from __future__ import annotations

from ..._transports import (
    AsyncTransport,
    ClientFactory,
    aiohttp_transport,
    default_limits,
    hooked_client_factory,
)
from .policy import AddressPolicy

__all__ = ["guarded_client_factory", "guarded_pool", "shared_pool"]


def guarded_pool(policy: AddressPolicy, concurrency: int) -> AsyncTransport:
    """aiohttp's pool (as batch runs send through it), at most ``concurrency`` connections,
    each to an address ``policy`` allows."""
    return aiohttp_transport(concurrency, policy.allowed_addresses)


def shared_pool(policy: AddressPolicy) -> AsyncTransport:
    """The application's own pool for the connector's requests: `guarded_pool` at the
    default connection limit (about half the CPU of httpx's client a request)."""
    return guarded_pool(policy, default_limits().max_connections or 100)


def guarded_client_factory(policy: AddressPolicy) -> ClientFactory:
    """The clients of configurations with TLS or proxy options: guarded too."""
    return hooked_client_factory(policy.allowed_addresses)
