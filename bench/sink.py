"""The baseline: a bare grpc.aio client-streaming sink that only counts entries."""

from __future__ import annotations

import asyncio
import sys

import grpc

from pulse.v1 import logs_pb2, logs_pb2_grpc


class Sink(logs_pb2_grpc.LogServiceServicer):
    async def Ingest(self, request_iterator, context):
        accepted = 0
        async for request in request_iterator:
            accepted += len(request.entries)
        return logs_pb2.IngestResponse(accepted=accepted)


async def main(port: int) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    logs_pb2_grpc.add_LogServiceServicer_to_server(Sink(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
