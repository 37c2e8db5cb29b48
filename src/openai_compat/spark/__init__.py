"""Batch runs on Spark: the local row engine inside ``mapInArrow`` (``pip install
'openai-compat[spark]'``; Spark needs Java 17 or later).

```python
from openai_compat.spark import map_endpoint

df = spark.read.parquet("tickets/")
out = map_endpoint(df, config, mapping=mapping, outputs=outputs, key="id",
                   concurrency=32, rate="600/minute")
out.write.mode("overwrite").parquet("results/")
```

Modules: `_partition` (`PartitionRunner`: one partition through `BatchRun`), `_schema` (the
flat result row as a Spark schema), `_map` (`map_endpoint`, the rate limit's share per
task), `_session` (a session on 127.0.0.1), `cli` (``openai-compat batch --engine spark``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from ._map import map_endpoint, task_share
    from ._session import spark_session

__all__ = ["map_endpoint", "spark_session", "task_share"]

# Loaded on first use: importing the package must not start pyspark's imports.
_HOMES = {"map_endpoint": "._map", "task_share": "._map", "spark_session": "._session"}


__getattr__ = lazy_attributes(__name__, _HOMES, globals())
