"""Prometheus metrics, in a registry owned by one app (no process-wide state)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass
class ServerMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    batch_items: Histogram
    batch_requests: Histogram
    queue_depth: Gauge
    tokens: Counter

    @classmethod
    def create(cls) -> ServerMetrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "omniretrieve_requests",
                "HTTP requests by route and status",
                ["route", "status"],
                registry=registry,
            ),
            latency=Histogram(
                "omniretrieve_request_seconds",
                "Request latency by route",
                ["route"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            batch_items=Histogram(
                "omniretrieve_batch_items",
                "Inputs or documents per model batch",
                ["model"],
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            batch_requests=Histogram(
                "omniretrieve_batch_requests",
                "Requests merged into one model batch",
                ["model"],
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            queue_depth=Gauge(
                "omniretrieve_queue_depth",
                "Inputs or documents waiting per model",
                ["model"],
                registry=registry,
            ),
            tokens=Counter(
                "omniretrieve_tokens", "Tokens processed per model", ["model"], registry=registry
            ),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
