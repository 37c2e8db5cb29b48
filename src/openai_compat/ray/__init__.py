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
429 pause and counts: a small actor), `_arrow` (the flat result row as Arrow), `_map`
(`map_endpoint`), `_cli` (``openai-compat batch --engine ray``), `_cluster` (starting or
joining a cluster).
"""

from ._coordinator import ClusterScheduler, coordinator_for
from ._map import map_endpoint
from ._udf import EndpointUDF

__all__ = ["ClusterScheduler", "EndpointUDF", "coordinator_for", "map_endpoint"]
