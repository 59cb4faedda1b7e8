#!/usr/bin/env python3
"""A Baton connector in Python: the baton.connector.v1 contract with grpcio.

It proves the contract is language-neutral: it passes baton-conformance
like the Rust connectors. It "transfers" by playing steps chosen by the
target's name (a queue name or a SIP URI):

  contains "busy"  RINGING, FAILED(BUSY)
  contains "hold"  RINGING, then nothing until cancelled or the deadline
  anything else    RINGING, ANSWERED, CONTEXT_DELIVERED, CONNECTED, COMPLETED

Everything a real connector must do is here, in one file: validation
(INVALID_ARGUMENT naming the field), capability checks (UNIMPLEMENTED),
context limits, StartTransfer idempotent by (handoff id, attempt) with
replay from the first event, a run id, gapless sequences, exactly one
terminal event, cancel, deadlines, health, reflection, the JSON ready line
and a SIGTERM that ends open streams with UNAVAILABLE and exits 0.

The Python stubs are generated at start-up from the repository's .proto
files with grpcio-tools, into a temporary directory: the contract stays the
single source of truth and there is no generated code to keep in step.

Needs: grpcio, grpcio-tools, grpcio-health-checking, grpcio-reflection.
"""

import argparse
import importlib
import importlib.resources
import json
import logging
import signal
import sys
import tempfile
import threading
import time
import uuid
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

SERVICE = "baton.connector.v1.ConnectorService"
NAME = "python-example"
VERSION = "0.1.0"
# How long an ended transfer is kept for replays (a control service that
# re-attaches after a restart still gets its outcome).
KEEP_ENDED_SECONDS = 15 * 60
MAX_HANDOFF_ID_BYTES = 64
STRUCTURED_MAX_BYTES = 16 * 1024
USER_TO_USER_MAX_BYTES = 128
# Pauses between scripted steps, so that streams see events one by one.
STEP_SECONDS = 0.02

log = logging.getLogger("connector")


def generate_stubs(proto_dir: Path, out: Path):
    """Compiles the contract into `out` and imports it."""
    from grpc_tools import protoc

    well_known = Path(importlib.resources.files("grpc_tools")) / "_proto"
    files = [
        "baton/type/v1/annotations.proto",
        "baton/type/v1/handoff_context.proto",
        "baton/connector/v1/connector.proto",
    ]
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            *files,
        ]
    )
    if status != 0:
        raise SystemExit(f"protoc failed on {proto_dir} (status {status})")
    sys.path.insert(0, str(out))
    connector_pb2 = importlib.import_module("baton.connector.v1.connector_pb2")
    connector_grpc = importlib.import_module("baton.connector.v1.connector_pb2_grpc")
    types_pb2 = importlib.import_module("baton.type.v1.handoff_context_pb2")
    return connector_pb2, connector_grpc, types_pb2


def terminal_kinds(pb):
    return (
        pb.TRANSFER_EVENT_KIND_COMPLETED,
        pb.TRANSFER_EVENT_KIND_FAILED,
        pb.TRANSFER_EVENT_KIND_CANCELLED,
    )


class Refused(Exception):
    """A request refused with a status code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Transfer:
    """One transfer's event log, followed by every StartTransfer stream."""

    def __init__(self, pb, key, target_name, deadline):
        self.pb = pb
        self.key = key
        self.target_name = target_name
        self.deadline = deadline
        self.run_id = str(uuid.uuid4())
        self.events = []
        self.changed = threading.Condition()
        self.cancel_requested = threading.Event()
        self.ended_at = None

    def ended(self):
        with self.changed:
            return self.ended_at is not None

    def connected(self):
        with self.changed:
            return any(e.kind == self.pb.TRANSFER_EVENT_KIND_CONNECTED for e in self.events)

    def push(self, kind, detail="", failure_reason=0):
        """Appends an event unless the transfer ended: one terminal event."""
        pb = self.pb
        with self.changed:
            if self.ended_at is not None:
                return False
            event = pb.StartTransferResponse(
                sequence=len(self.events) + 1,
                kind=kind,
                detail=detail,
                failure_reason=failure_reason,
                run_id=self.run_id,
            )
            event.time.GetCurrentTime()
            self.events.append(event)
            if kind in terminal_kinds(pb):
                self.ended_at = time.monotonic()
            self.changed.notify_all()
            return True

    def run(self, types_pb2):
        """Plays the target's steps, honouring cancel and the deadline."""
        pb = self.pb
        name = self.target_name
        if "busy" in name:
            steps = ["ringing", "busy"]
        elif "hold" in name:
            steps = ["ringing", "hold"]
        else:
            steps = ["ringing", "answered", "context_delivered", "connected", "completed"]
        kinds = {
            "ringing": pb.TRANSFER_EVENT_KIND_RINGING,
            "answered": pb.TRANSFER_EVENT_KIND_ANSWERED,
            "context_delivered": pb.TRANSFER_EVENT_KIND_CONTEXT_DELIVERED,
            "connected": pb.TRANSFER_EVENT_KIND_CONNECTED,
            "completed": pb.TRANSFER_EVENT_KIND_COMPLETED,
        }
        for step in steps:
            connected = self.connected()
            # The deadline is for connecting a human: it stops applying once
            # the customer is connected.
            pause = None if step == "hold" else STEP_SECONDS
            if not connected:
                left = max(0.0, self.deadline - time.time())
                pause = left if pause is None else min(pause, left)
            if self.cancel_requested.wait(pause):
                self.push(pb.TRANSFER_EVENT_KIND_CANCELLED, "cancelled by the control service")
                return
            if not connected and time.time() >= self.deadline:
                self.push(
                    pb.TRANSFER_EVENT_KIND_FAILED,
                    "the deadline passed before a human was connected",
                    types_pb2.FAILURE_REASON_DEADLINE_EXCEEDED,
                )
                return
            if step == "busy":
                self.push(
                    pb.TRANSFER_EVENT_KIND_FAILED, "486 Busy Here", types_pb2.FAILURE_REASON_BUSY
                )
                return
            self.push(kinds[step])


class Connector:
    """The ConnectorService servicer."""

    def __init__(self, pb, types_pb2, stopping):
        self.pb = pb
        self.types = types_pb2
        self.stopping = stopping
        self.lock = threading.Lock()
        self.transfers = {}
        self.target_kinds = [types_pb2.TARGET_KIND_QUEUE, types_pb2.TARGET_KIND_SIP_URI]
        self.modes = [types_pb2.TRANSFER_MODE_WARM, types_pb2.TRANSFER_MODE_BLIND]
        self.limits = {
            pb.CONTEXT_MECHANISM_STRUCTURED: STRUCTURED_MAX_BYTES,
            pb.CONTEXT_MECHANISM_SIP_USER_TO_USER: USER_TO_USER_MAX_BYTES,
        }

    def GetConnectorInfo(self, request, context):
        pb = self.pb
        return pb.GetConnectorInfoResponse(
            name=NAME,
            version=VERSION,
            target_kinds=self.target_kinds,
            transfer_modes=self.modes,
            context_capabilities=[
                pb.ContextCapability(mechanism=m, max_bytes=b) for m, b in self.limits.items()
            ],
        )

    def validate(self, request):
        """Returns (target kind, target name, deadline) or raises Refused."""
        pb, types = self.pb, self.types
        violations = []
        if not request.handoff_id or len(request.handoff_id.encode()) > MAX_HANDOFF_ID_BYTES:
            violations.append("handoff_id: is required (at most 64 bytes)")
        if request.attempt == 0:
            violations.append("attempt: must be 1 or more")
        which = request.target.WhichOneof("kind") if request.HasField("target") else None
        kind, name = None, ""
        if which == "queue" and request.target.queue.name:
            kind, name = types.TARGET_KIND_QUEUE, request.target.queue.name
        elif which == "phone_number" and request.target.phone_number:
            kind, name = types.TARGET_KIND_PHONE_NUMBER, request.target.phone_number
        elif which == "sip_uri" and request.target.sip_uri:
            kind, name = types.TARGET_KIND_SIP_URI, request.target.sip_uri
        elif which == "route":
            violations.append("target.route: routes are resolved by the control service")
        else:
            violations.append("target: must name a queue, phone_number or sip_uri")
        if request.mode not in (
            types.TRANSFER_MODE_WARM,
            types.TRANSFER_MODE_BLIND,
            types.TRANSFER_MODE_ATTENDED,
        ):
            violations.append("mode: must be warm, blind or attended")
        if not request.HasField("deadline"):
            violations.append("deadline: is required")
        envelope = request.envelope
        if envelope.HasField("context") and envelope.context.ByteSize() > STRUCTURED_MAX_BYTES:
            violations.append(
                f"envelope.context: {envelope.context.ByteSize()} bytes, over the advertised "
                f"{STRUCTURED_MAX_BYTES}"
            )
        for index, payload in enumerate(envelope.payloads):
            limit = self.limits.get(payload.mechanism)
            size = len(payload.content.encode())
            if limit and size > limit:
                violations.append(
                    f"envelope.payloads[{index}].content: {size} bytes, over the advertised {limit}"
                )
        if violations:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(violations))
        if kind not in self.target_kinds:
            raise Refused(grpc.StatusCode.UNIMPLEMENTED, f"{NAME} does not serve this target kind")
        if request.mode not in self.modes:
            raise Refused(grpc.StatusCode.UNIMPLEMENTED, f"{NAME} does not support this mode")
        deadline = request.deadline.seconds + request.deadline.nanos / 1e9
        return kind, name, deadline

    def start(self, request, name, deadline):
        """The transfer for (handoff id, attempt), started if new."""
        key = (request.handoff_id, request.attempt)
        with self.lock:
            self.forget_old()
            existing = self.transfers.get(key)
            if existing is not None:
                log.info("StartTransfer repeated for %s; replaying", key)
                return existing
            transfer = Transfer(self.pb, key, name, deadline)
            self.transfers[key] = transfer
        threading.Thread(target=transfer.run, args=(self.types,), daemon=True).start()
        return transfer

    def forget_old(self):
        now = time.monotonic()
        for key in [
            k
            for k, t in self.transfers.items()
            if t.ended_at is not None and now - t.ended_at > KEEP_ENDED_SECONDS
        ]:
            del self.transfers[key]

    def StartTransfer(self, request, context):
        try:
            _, name, deadline = self.validate(request)
        except Refused as refused:
            context.abort(refused.code, refused.message)
        transfer = self.start(request, name, deadline)
        sent = 0
        while True:
            with transfer.changed:
                while (
                    sent == len(transfer.events)
                    and not self.stopping.is_set()
                    and context.is_active()
                ):
                    transfer.changed.wait(0.5)
                batch = transfer.events[sent:]
            if not batch and self.stopping.is_set():
                context.abort(
                    grpc.StatusCode.UNAVAILABLE,
                    "connector shutting down; StartTransfer again to re-attach",
                )
            if not context.is_active():
                return
            for event in batch:
                sent += 1
                yield event
                if event.kind in terminal_kinds(self.pb):
                    return

    def CancelTransfer(self, request, context):
        cancelled = False
        with self.lock:
            for (handoff_id, attempt), transfer in self.transfers.items():
                if handoff_id != request.handoff_id:
                    continue
                if request.attempt not in (0, attempt):
                    continue
                if not transfer.ended() and not transfer.cancel_requested.is_set():
                    transfer.cancel_requested.set()
                    cancelled = True
        log.info("CancelTransfer %s/%s: %s", request.handoff_id, request.attempt, cancelled)
        return self.pb.CancelTransferResponse(cancelled=cancelled)

    def wake_all(self):
        with self.lock:
            transfers = list(self.transfers.values())
        for transfer in transfers:
            with transfer.changed:
                transfer.changed.notify_all()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:50081", help="gRPC listen address")
    parser.add_argument(
        "--proto-dir",
        type=Path,
        default=Path(__file__).resolve().parents[3] / "proto",
        help="the repository's proto directory",
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    # Removed when the process ends.
    stubs = tempfile.TemporaryDirectory(prefix="baton-stubs-")
    pb, pb_grpc, types_pb2 = generate_stubs(args.proto_dir, Path(stubs.name))

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    connector = Connector(pb, types_pb2, stopping)
    pb_grpc.add_ConnectorServiceServicer_to_server(connector, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(args.listen)
    if port == 0:
        raise SystemExit(f"cannot listen on {args.listen}")
    server.start()
    host = args.listen.rsplit(":", 1)[0]
    print(
        json.dumps({"ready": {"service": f"baton-connector-{NAME}", "grpc": f"{host}:{port}"}}),
        flush=True,
    )
    log.info("serving on %s:%s", host, port)

    stopping.wait()
    log.info("stopping: not serving, ending streams with UNAVAILABLE")
    for service in ("", SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    connector.wake_all()
    server.stop(grace=5).wait()
    stubs.cleanup()
    log.info("stopped")


if __name__ == "__main__":
    main()
