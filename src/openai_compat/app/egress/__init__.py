"""Where the application may send requests: the operator's address policy, judging every
address a host resolves to and whatever IPv4 address an IPv6 one carries (``policy``), and
the guard, the transports whose every connection that policy vets (``guard``), and the same
policy at every connection of a database input (``databases``).
"""

from .databases import DatabaseGuard, DatabaseTarget
from .guard import guarded_client_factory, guarded_pool, shared_pool
from .policy import AddressPolicy, EgressRefused

__all__ = [
    "AddressPolicy",
    "DatabaseGuard",
    "DatabaseTarget",
    "EgressRefused",
    "guarded_client_factory",
    "guarded_pool",
    "shared_pool",
]
