"""Joining a Ray cluster, or starting one on this machine that listens on 127.0.0.1 only."""

from __future__ import annotations

import logging
import os

import ray

__all__ = ["connect"]

# Ray asks its own IP address of the network when it starts a cluster, and binds its
# servers there; with this set, a cluster started here takes 127.0.0.1 (loopback only).
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def connect(address: str | None = None, *, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address`` (``auto``, ``ray://host:10001``, or ``RAY_ADDRESS``),
    or start a local one on 127.0.0.1. True when this call connected (and should shut down).
    """
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None:
        os.environ.setdefault(LOCAL_ONLY_ENV, "0")
    ray.init(
        address=address,
        num_cpus=num_cpus if address is None else None,
        include_dashboard=False if address is None else None,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    return True
