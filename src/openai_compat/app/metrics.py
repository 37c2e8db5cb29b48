"""``GET /metrics``: the application's figures in the Prometheus text format.

One registry per application (not prometheus-client's global one, so several apps in one
process keep their own). Labels are connector ids, run statuses and outcomes: never a
configuration value, so no secret can reach a label. The runs-by-status gauge is read from
the database at each scrape (every instance reports every run).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..apis import Usage
from .runs import RUN_STATUSES

__all__ = ["CONTENT_TYPE", "AppMetrics"]


# The *_created series double every counter and say only when the process started.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _RunsByStatus(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "openai_compat_runs", "Batch runs in the database, by status", labels=["status"]
        )
        try:
            counts = self._counts()
        except Exception:  # a scrape must answer even when the database does not
            counts = {}
        for status in RUN_STATUSES:
            family.add_metric([status], counts.get(status, 0))
        yield family


class AppMetrics:
    """The application's metrics; ``render()`` is the scrape's body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "openai_compat_endpoint_requests",
            "Requests to model endpoints (rows of runs; execute_model calls), by outcome",
            ["connector_id", "source", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "openai_compat_endpoint_latency_seconds",
            "Time to a complete answer (retries included)",
            ["connector_id", "source"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "openai_compat_tokens",
            "Tokens the endpoints reported, by kind",
            ["connector_id", "kind"],
            registry=self.registry,
        )
        self.retries = Counter(
            "openai_compat_endpoint_retries",
            "Attempts after the first one",
            ["connector_id"],
            registry=self.registry,
        )
        self.rows = Counter(
            "openai_compat_run_rows",
            "Rows finished by the runs of this instance, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.schema_rows = Counter(
            "openai_compat_run_schema_rows",
            "Rows of runs with a schema, by mode and how their answer validated "
            "(valid_first, valid_after_reasks, invalid)",
            ["mode", "outcome"],
            registry=self.registry,
        )
        self.rows_per_s = Gauge(
            "openai_compat_run_rows_per_second",
            "Rows per second of the runs this instance executes (last progress window)",
            registry=self.registry,
        )
        self.runs_executing = Gauge(
            "openai_compat_runs_executing",
            "Runs this instance executes now",
            registry=self.registry,
        )

    def watch_runs(self, counts: Callable[[], dict[str, int]]) -> None:
        """Report the runs by status with ``counts`` at each scrape."""
        self.registry.register(_RunsByStatus(counts))

    def observe_row(
        self,
        connector_id: int,
        ok: bool,
        latency_ms: float,
        attempts: int,
        usage: dict[str, object] | None,
        schema: dict[str, object] | None = None,
    ) -> None:
        """Count one finished row of a run (``schema``: how its answer validated)."""
        label = str(connector_id)
        if schema is not None:
            answers = schema.get("answers")
            outcome_of_schema = (
                "invalid"
                if not schema.get("valid")
                else "valid_after_reasks"
                if isinstance(answers, int) and answers > 1
                else "valid_first"
            )
            self.schema_rows.labels(str(schema.get("mode")), outcome_of_schema).inc()
        outcome = "ok" if ok else "failed"
        self.rows.labels(outcome).inc()
        if attempts:
            self.requests.labels(label, "run", outcome).inc()
            self.latency.labels(label, "run").observe(latency_ms / 1000)
            if attempts > 1:
                self.retries.labels(label).inc(attempts - 1)
        counts = Usage.parse(usage)
        if counts is not None:
            # The label values stay the Chat API's words, whichever spelling the answer used.
            for kind, value in (("prompt", counts.input), ("completion", counts.output)):
                if value is not None and value > 0:
                    self.tokens.labels(label, kind).inc(value)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)
