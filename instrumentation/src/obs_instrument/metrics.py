"""Every Prometheus metric the helper exposes, created on one registry per instrumented app.

Names follow the metric contract (docs/metrics-contract.md). Label values are bounded: routes are
templates, SQL tables and LLM models pass through a cardinality guard, user ids never appear.
"""
from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# Latency buckets: include 0.15 and 0.2 (the 200 ms latency SLO and its warning line) and 0.5/1.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
DB_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
# OTel GenAI semantic conventions, advisory explicit bucket boundaries.
GENAI_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                       16777216, 67108864)
GENAI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                          40.96, 81.92)


class BoundedValues:
    """Pass label values through until `limit` distinct ones were seen, then map new ones to `other`."""

    def __init__(self, limit: int, other: str = "other"):
        self.limit, self.other = limit, other
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return self.other


class ObsMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, process_metrics: bool = True):
        r = self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)

        # Golden signals
        self.http_requests = Counter(
            "http_requests", "HTTP requests handled, by route template and status code",
            ["method", "endpoint", "status_code", "environment"], registry=r)
        self.http_duration = Histogram(
            "http_request_duration_seconds", "HTTP request latency in seconds, by route template",
            ["method", "endpoint", "environment"], buckets=HTTP_BUCKETS, registry=r)
        self.http_in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being handled now", ["method", "environment"], registry=r)

        # Database (SQLAlchemy)
        self.db_duration = Histogram(
            "database_query_duration_seconds", "Database query latency in seconds",
            ["operation", "table", "environment"], buckets=DB_BUCKETS, registry=r)
        self.db_queries = Counter(
            "database_queries", "Database queries executed", ["operation", "table", "status", "environment"],
            registry=r)
        self.db_errors = Counter(
            "database_errors", "Database queries that raised", ["operation", "error_type", "environment"],
            registry=r)
        self.db_slow = Counter(
            "database_slow_queries", "Database queries slower than the slow-query threshold",
            ["table", "environment"], registry=r)

        # Auth and queues
        self.auth_attempts = Counter(
            "auth_attempts", "Authentication attempts", ["method", "result", "environment"], registry=r)
        self.auth_failures = Counter(
            "auth_failures", "Failed authentication attempts, by reason", ["method", "reason", "environment"],
            registry=r)
        self.queue_depth = Gauge(
            "queue_depth_messages", "Items waiting in an in-process or external queue", ["queue", "environment"],
            registry=r)

        # LLM (OTel GenAI conventions) and cost
        self.genai_tokens = Histogram(
            "gen_ai_client_token_usage", "Input and output tokens per GenAI operation (gen_ai.client.token.usage)",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type",
             "environment"], buckets=GENAI_TOKEN_BUCKETS, registry=r)
        self.genai_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration in seconds (gen_ai.client.operation.duration)",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type", "environment"],
            buckets=GENAI_DURATION_BUCKETS, registry=r)
        self.llm_tokens = Counter(
            "llm_tokens", "LLM tokens used (the contract's counter; the GenAI histogram has the distribution)",
            ["model", "token_type", "operation", "environment"], registry=r)
        self.llm_cost = Counter(
            "api_cost_usd", "Estimated LLM spend in US dollars, from the configured price table",
            ["model", "operation", "environment"], registry=r)
        self.llm_unpriced = Counter(
            "llm_unpriced_calls", "LLM calls whose model has no entry in the price table (cost not counted)",
            ["model", "environment"], registry=r)

        # Cardinality guards
        self.tables = BoundedValues(64)
        self.models = BoundedValues(32)
        self.reasons = BoundedValues(32)
        self.queues = BoundedValues(32)
