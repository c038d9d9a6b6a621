"""Client commands: ``pulse metrics``, ``pulse logs``, ``pulse send-logs``, ``pulse sensors``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import TextIO

from google.protobuf.json_format import MessageToDict

from pulse.cli.common import add_client_flags, client_options, parse_pairs, run_client
from pulse.client import open_channel
from pulse.v1 import (
    common_pb2,
    logs_pb2,
    logs_pb2_grpc,
    metrics_pb2,
    metrics_pb2_grpc,
    sensors_pb2,
    sensors_pb2_grpc,
)

__all__ = ["add_parsers"]

SEVERITIES = [v.name.removeprefix("SEVERITY_") for v in common_pb2.Severity.DESCRIPTOR.values][1:]


def _severity(name: str) -> int:
    return common_pb2.Severity.Value(f"SEVERITY_{name.upper()}")


def _print_json(message: object, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps(MessageToDict(message, preserving_proto_field_name=True)) + "\n")
    out.flush()


# pulse metrics -------------------------------------------------------------------------------


async def _metrics(args: argparse.Namespace) -> int:
    options = client_options(args)
    request = metrics_pb2.StreamMetricsRequest(
        metric_types=args.type or [],
        interval_ms=args.interval_ms,
        label_filters=parse_pairs(args.label, "--label"),
    )
    async with open_channel(options) as channel:
        stub = metrics_pb2_grpc.MetricsServiceStub(channel)
        if args.list:
            reply = await stub.ListMetricTypes(
                metrics_pb2.ListMetricTypesRequest(), metadata=options.metadata
            )
            for t in reply.types:
                print(f"{t.name:14} {t.unit:11} {t.description}")
            return 0
        count = 0
        async for sample in stub.StreamMetrics(request, metadata=options.metadata):
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            print(
                f"{sample.time.ToDatetime().isoformat()} #{sample.sequence} "
                f"{sample.metric_type}={sample.value:.2f}{sample.unit} {labels}",
                flush=True,
            )
            count += 1
            if args.count and count >= args.count:
                break
    return 0


# pulse logs ----------------------------------------------------------------------------------


async def _logs(args: argparse.Namespace) -> int:
    options = client_options(args)
    flt = logs_pb2.LogFilter(
        min_severity=_severity(args.min_severity) if args.min_severity else 0,
        sources=args.source or [],
        task_ids=args.task_id or [],
        pattern=args.pattern or "",
        attributes=parse_pairs(args.attr, "--attr"),
        backlog=args.backlog,
    )
    done = asyncio.Event()

    async def filters() -> AsyncIterator[logs_pb2.LogFilter]:
        yield flt
        await done.wait()  # keep the request side open until we stop

    count = 0
    async with open_channel(options) as channel:
        call = logs_pb2_grpc.LogServiceStub(channel).Monitor(filters(), metadata=options.metadata)
        async for response in call:
            if response.dropped:
                print(f"# {response.dropped} entries dropped (reading too slowly)", file=sys.stderr)
            for entry in response.entries:
                if args.json:
                    _print_json(entry)
                else:
                    sev = common_pb2.Severity.Name(entry.severity).removeprefix("SEVERITY_")
                    print(
                        f"{entry.time.ToDatetime().isoformat()} {sev:5} [{entry.source}] "
                        f"{entry.message}",
                        flush=True,
                    )
                count += 1
            if args.count and count >= args.count:
                break
        done.set()
    return 0


# pulse send-logs -----------------------------------------------------------------------------


def _entries(lines: Iterable[str], source: str, task_id: str) -> Iterable[logs_pb2.LogEntry]:
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            data = json.loads(line)
            severity = data.get("severity", "INFO")
            yield logs_pb2.LogEntry(
                message=str(data.get("message", "")),
                source=str(data.get("source", source)),
                task_id=str(data.get("task_id", task_id)),
                severity=_severity(severity) if isinstance(severity, str) else int(severity),
                attributes={str(k): str(v) for k, v in data.get("attributes", {}).items()},
            )
        else:
            yield logs_pb2.LogEntry(
                message=line, source=source, task_id=task_id, severity=common_pb2.SEVERITY_INFO
            )


def _read_entries(args: argparse.Namespace) -> list[logs_pb2.LogEntry]:
    if args.file == "-":
        return list(_entries(sys.stdin, args.source, args.task_id or ""))
    with open(args.file, encoding="utf-8") as stream:
        return list(_entries(stream, args.source, args.task_id or ""))


async def _send_logs(args: argparse.Namespace, entries: list[logs_pb2.LogEntry]) -> int:
    options = client_options(args)

    async def batches() -> AsyncIterator[logs_pb2.IngestRequest]:
        for i in range(0, len(entries), args.batch_size):
            yield logs_pb2.IngestRequest(
                batch_id=uuid.uuid4().hex, entries=entries[i : i + args.batch_size]
            )

    async with open_channel(options) as channel:
        reply = await logs_pb2_grpc.LogServiceStub(channel).Ingest(
            batches(), metadata=options.metadata
        )
    print(
        json.dumps(
            MessageToDict(
                reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
        )
    )
    return 0


# pulse sensors -------------------------------------------------------------------------------


async def _sensors(args: argparse.Namespace) -> int:
    options = client_options(args)
    async with open_channel(options) as channel:
        stub = sensors_pb2_grpc.SensorServiceStub(channel)
        if args.action == "get":
            _print_json(
                await stub.GetSummary(
                    sensors_pb2.GetSummaryRequest(sensor_id=args.sensor), metadata=options.metadata
                )
            )
        elif args.action == "record":
            reading = sensors_pb2.Reading(
                id=args.id or uuid.uuid4().hex, sensor_id=args.sensor, temperature=args.temperature
            )
            reading.time.GetCurrentTime()
            reply = await stub.Record(iter([reading]), metadata=options.metadata)
            print(
                json.dumps(
                    MessageToDict(
                        reply,
                        preserving_proto_field_name=True,
                        always_print_fields_with_no_presence=True,
                    )
                )
            )
        else:
            request = sensors_pb2.WatchSummariesRequest(sensor_ids=args.sensor_ids)
            count = 0
            async for summary in stub.WatchSummaries(request, metadata=options.metadata):
                _print_json(summary)
                count += 1
                if args.count and count >= args.count:
                    break
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    metrics = sub.add_parser("metrics", help="watch StreamMetrics")
    metrics.add_argument("--type", action="append", help="metric type (repeatable)")
    metrics.add_argument("--interval-ms", type=int, default=1000)
    metrics.add_argument("--label", action="append", metavar="KEY=VALUE", help="label filter")
    metrics.add_argument("--list", action="store_true", help="list the metric types and exit")
    metrics.add_argument("--count", type=int, default=0, help="stop after N samples")
    add_client_flags(metrics)
    metrics.set_defaults(func=lambda a: run_client(lambda: _metrics(a)))

    logs = sub.add_parser("logs", help="monitor logs with a filter")
    logs.add_argument("--min-severity", choices=SEVERITIES, type=str.upper)
    logs.add_argument("--source", action="append")
    logs.add_argument("--task-id", action="append")
    logs.add_argument("--pattern", help="RE2 pattern the message must contain")
    logs.add_argument("--attr", action="append", metavar="KEY=VALUE")
    logs.add_argument("--backlog", type=int, default=0, help="replay up to N buffered entries")
    logs.add_argument("--count", type=int, default=0, help="stop after N entries")
    logs.add_argument("--json", action="store_true", help="print entries as JSON lines")
    add_client_flags(logs)
    logs.set_defaults(func=lambda a: run_client(lambda: _logs(a)))

    send = sub.add_parser("send-logs", help="send log lines (text or JSON lines) through Ingest")
    send.add_argument("file", nargs="?", default="-", help="file to read, - for stdin")
    send.add_argument("--source", default="cli")
    send.add_argument("--task-id")
    send.add_argument("--batch-size", type=int, default=100)
    add_client_flags(send)
    send.set_defaults(func=lambda a: run_client(lambda: _send_logs(a, _read_entries(a))))

    sensors = sub.add_parser("sensors", help="record, watch or get sensor summaries")
    actions = sensors.add_subparsers(dest="action", required=True)
    record = actions.add_parser("record", help="record one reading")
    record.add_argument("--sensor", required=True)
    record.add_argument("--temperature", type=float, required=True)
    record.add_argument("--id", help="reading id (default: random)")
    get = actions.add_parser("get", help="the current summary of one sensor")
    get.add_argument("--sensor", required=True)
    watch = actions.add_parser("watch", help="stream summaries")
    watch.add_argument("sensor_ids", nargs="*")
    watch.add_argument("--count", type=int, default=0)
    for p in (record, get, watch):
        add_client_flags(p)
        p.set_defaults(func=lambda a: run_client(lambda: _sensors(a)))
