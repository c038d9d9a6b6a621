"""Names of Pulse's telemetry: semantic-convention keys and Pulse's own ``pulse.*`` names.

``docs/telemetry.md`` documents each one; dashboards and alerts are written against it.
"""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes.rpc_attributes import (
    RPC_METHOD,
    RPC_RESPONSE_STATUS_CODE,
    RPC_SYSTEM_NAME,
)
from opentelemetry.semconv._incubating.metrics.rpc_metrics import (
    RPC_CLIENT_CALL_DURATION,
    RPC_SERVER_CALL_DURATION,
)

__all__ = [
    "ATTR_AUTH_REASON",
    "ATTR_BATCH_OUTCOME",
    "ATTR_FAULT_KIND",
    "ATTR_FILTER_OUTCOME",
    "ATTR_INGEST_MODIFICATION",
    "ATTR_INGEST_OUTCOME",
    "ATTR_RATELIMIT_SCOPE",
    "ATTR_RPC_TYPE",
    "ATTR_SENSOR_ID",
    "ATTR_SENSOR_OUTCOME",
    "ATTR_SENSOR_STATISTIC",
    "DURATION_BUCKETS_S",
    "LAG_BUCKETS_S",
    "RPC_CLIENT_CALL_DURATION",
    "RPC_METHOD",
    "RPC_RESPONSE_STATUS_CODE",
    "RPC_SERVER_CALL_DURATION",
    "RPC_SYSTEM_NAME",
]

# Pulse's own attribute keys; every value set is small and fixed (see docs/telemetry.md).
ATTR_RPC_TYPE = "pulse.rpc.type"  # unary | client_stream | server_stream | bidi_stream
ATTR_INGEST_OUTCOME = "pulse.ingest.outcome"  # accepted | rate_limited | rejected
ATTR_INGEST_MODIFICATION = "pulse.ingest.modification"  # redacted | truncated
ATTR_RATELIMIT_SCOPE = "pulse.ratelimit.scope"  # global | source | task
# forwarded | queue_full | export_failed | retries_exhausted | rejected | shutdown
ATTR_FORWARD_OUTCOME = "pulse.log.forward.outcome"
ATTR_BATCH_OUTCOME = "pulse.ingest.batch.outcome"  # applied | duplicate | invalid
ATTR_FILTER_OUTCOME = "pulse.monitor.filter.outcome"  # applied | invalid
ATTR_SENSOR_OUTCOME = "pulse.sensor.outcome"  # accepted | duplicate | rejected
ATTR_SENSOR_ID = "pulse.sensor.id"  # bounded by sensors.max_labelled_sensors, then "other"
ATTR_SENSOR_STATISTIC = "pulse.sensor.statistic"  # min | max | avg
ATTR_AUTH_REASON = "pulse.auth.reason"  # missing | invalid
ATTR_FAULT_KIND = "pulse.fault.kind"  # error | latency

# Histogram buckets, in one place. Call durations reach minutes because streams are calls too.
DURATION_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
