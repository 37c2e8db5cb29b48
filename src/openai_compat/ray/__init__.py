"""Batch runs on a Ray cluster: the local row engine inside Ray Data (``pip install
'openai-compat[ray]'``).

```python
import ray
from openai_compat.ray import map_endpoint, EndpointUDF

ds = ray.data.read_parquet("tickets/")
out = map_endpoint(ds, config, mapping=mapping, outputs=outputs, key="id",
                   actors=4, concurrency=32, rate="600/minute")
out.write_parquet("results/")
```

Modules: `_udf` (`EndpointUDF`, the callable class), `_coordinator` (the job's rate limit,
429 pause, claimed keys and counts: a small actor), `_unique` (keys unique across the
dataset), `_map`
(`map_endpoint`), `cli` (``openai-compat batch --engine ray``), `_cluster` (starting or
joining a cluster).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from ._coordinator import ClusterScheduler, coordinator_for
    from ._map import map_endpoint
    from ._udf import EndpointUDF

__all__ = ["ClusterScheduler", "EndpointUDF", "coordinator_for", "map_endpoint"]

# Loaded on first use: the coordinator actor's process imports this package (its class
# lives here) and must not pay for Ray Data and pyarrow, which only the UDF actors need
# (1.6 s of a fresh worker's start-up on the 2-core machine).
_HOMES = {
    "ClusterScheduler": "._coordinator",
    "coordinator_for": "._coordinator",
    "map_endpoint": "._map",
    "EndpointUDF": "._udf",
}


__getattr__ = lazy_attributes(__name__, _HOMES, globals())
