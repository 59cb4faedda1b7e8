#!/usr/bin/env python3
"""A connector that misbehaves on purpose, for the control service's fault tests.

It serves health and GetConnectorInfo like a healthy connector, so that the
control service sends it transfers; what StartTransfer then does is read
from the mode file on every call (the test rewrites it to break or to fix
the connector while it runs):

  ok                    RINGING, ANSWERED, CONNECTED, COMPLETED, as the contract says
  hang                  accepts the call (response headers) and never sends an event
  silent                never answers the call at all (no headers)
  garbage-sequence      RINGING numbered 1, then ANSWERED numbered 3 (a gap)
  garbage-illegal       COMPLETED before anyone answered
  garbage-unspecified   an event without a kind (TRANSFER_EVENT_KIND_UNSPECIFIED)
  garbage-bytes         bytes that do not decode as StartTransferResponse

Every StartTransfer and CancelTransfer is appended to the record file as a
JSON line, so the test counts what reached the connector.

Needs: grpcio, grpcio-tools, grpcio-health-checking (as the Python example).
"""

import argparse
import json
import logging
import signal
import sys
import tempfile
import threading
import uuid
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "connectors" / "examples" / "python"))
from connector import generate_stubs  # noqa: E402

SERVICE = "baton.connector.v1.ConnectorService"
# The longest a hanging call blocks; the control service gives up long before.
HANG_SECONDS = 120
# Not a valid protobuf: a varint that never ends.
UNDECODABLE = b"\x08" + b"\xff" * 11

log = logging.getLogger("faulty")


class Faulty:
    def __init__(self, pb, types_pb2, mode_file, record_file, stopping):
        self.pb = pb
        self.types = types_pb2
        self.mode_file = mode_file
        self.record_file = record_file
        self.stopping = stopping
        self.lock = threading.Lock()

    def mode(self):
        try:
            return self.mode_file.read_text().strip() or "ok"
        except FileNotFoundError:
            return "ok"

    def record(self, **fields):
        with self.lock, open(self.record_file, "a") as out:
            out.write(json.dumps(fields) + "\n")

    def info(self, request, context):
        pb, types = self.pb, self.types
        return pb.GetConnectorInfoResponse(
            name="faulty",
            version="0.0.1",
            target_kinds=[types.TARGET_KIND_QUEUE, types.TARGET_KIND_SIP_URI],
            transfer_modes=[types.TRANSFER_MODE_WARM, types.TRANSFER_MODE_BLIND],
            context_capabilities=[
                pb.ContextCapability(mechanism=pb.CONTEXT_MECHANISM_STRUCTURED, max_bytes=16384)
            ],
        )

    def event(self, run_id, sequence, kind):
        return self.pb.StartTransferResponse(sequence=sequence, kind=kind, run_id=run_id)

    def block(self, context):
        """Blocks until the caller goes away (bounded)."""
        for _ in range(HANG_SECONDS * 10):
            if not context.is_active() or self.stopping.is_set():
                return
            self.stopping.wait(0.1)

    def start_transfer(self, request, context):
        mode = self.mode()
        self.record(
            call="start", handoff_id=request.handoff_id, attempt=request.attempt, mode=mode
        )
        log.info("StartTransfer %s/%s in mode %s", request.handoff_id, request.attempt, mode)
        pb = self.pb
        run = str(uuid.uuid4())
        if mode == "silent":
            self.block(context)
            return
        if mode == "hang":
            context.send_initial_metadata(())
            self.block(context)
            return
        if mode == "garbage-sequence":
            yield self.event(run, 1, pb.TRANSFER_EVENT_KIND_RINGING)
            yield self.event(run, 3, pb.TRANSFER_EVENT_KIND_ANSWERED)
            self.block(context)
            return
        if mode == "garbage-illegal":
            yield self.event(run, 1, pb.TRANSFER_EVENT_KIND_COMPLETED)
            return
        if mode == "garbage-unspecified":
            yield self.event(run, 1, pb.TRANSFER_EVENT_KIND_UNSPECIFIED)
            self.block(context)
            return
        if mode == "garbage-bytes":
            yield UNDECODABLE
            self.block(context)
            return
        for sequence, kind in enumerate(
            [
                pb.TRANSFER_EVENT_KIND_RINGING,
                pb.TRANSFER_EVENT_KIND_ANSWERED,
                pb.TRANSFER_EVENT_KIND_CONNECTED,
                pb.TRANSFER_EVENT_KIND_COMPLETED,
            ],
            start=1,
        ):
            yield self.event(run, sequence, kind)
            self.stopping.wait(0.02)

    def cancel_transfer(self, request, context):
        self.record(call="cancel", handoff_id=request.handoff_id, attempt=request.attempt)
        return self.pb.CancelTransferResponse(cancelled=False)


def serialize(message):
    """Raw bytes pass as they are: how garbage-bytes sends what never decodes."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--mode-file", type=Path, required=True)
    parser.add_argument("--record-file", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    stubs = tempfile.TemporaryDirectory(prefix="baton-stubs-")
    pb, _, types_pb2 = generate_stubs(REPO / "proto", Path(stubs.name))

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    faulty = Faulty(pb, types_pb2, args.mode_file, args.record_file, stopping)
    handlers = {
        "GetConnectorInfo": grpc.unary_unary_rpc_method_handler(
            faulty.info,
            request_deserializer=pb.GetConnectorInfoRequest.FromString,
            response_serializer=serialize,
        ),
        "StartTransfer": grpc.unary_stream_rpc_method_handler(
            faulty.start_transfer,
            request_deserializer=pb.StartTransferRequest.FromString,
            response_serializer=serialize,
        ),
        "CancelTransfer": grpc.unary_unary_rpc_method_handler(
            faulty.cancel_transfer,
            request_deserializer=pb.CancelTransferRequest.FromString,
            response_serializer=serialize,
        ),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port(args.listen)
    if port == 0:
        raise SystemExit(f"cannot listen on {args.listen}")
    server.start()
    host = args.listen.rsplit(":", 1)[0]
    print(
        json.dumps({"ready": {"service": "baton-connector-faulty", "grpc": f"{host}:{port}"}}),
        flush=True,
    )
    stopping.wait()
    server.stop(grace=1).wait()
    stubs.cleanup()


if __name__ == "__main__":
    main()
