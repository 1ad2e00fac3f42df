"""Prometheus metrics of one process: requests, latency and database pool use."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine


class _PoolCollector(Collector):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.engine.sync_engine.pool
        in_use = GaugeMetricFamily("voxflow_db_pool_connections_in_use", "Checked-out connections")
        size = GaugeMetricFamily("voxflow_db_pool_size", "Configured pool size")
        checkedout = getattr(pool, "checkedout", None)
        pool_size = getattr(pool, "size", None)
        in_use.add_metric([], float(checkedout()) if callable(checkedout) else 0.0)
        size.add_metric([], float(pool_size()) if callable(pool_size) else 0.0)
        yield in_use
        yield size


class Metrics:
    def __init__(self, engine: AsyncEngine) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "voxflow_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "voxflow_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.registry.register(_PoolCollector(engine))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
