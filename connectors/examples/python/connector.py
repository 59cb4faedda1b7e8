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
terminal event, cancel and its outcome, deadlines, health, reflection, the
JSON ready line, a journal that survives a restart (SQLite, under
--data-dir) and a SIGTERM that drains. It is shared by every tenant, and
keeps each tenant's transfers to that tenant: another tenant naming the same
(handoff id, attempt) is refused, and its CancelTransfer finds nothing.

A restart never delivers a customer twice. Every transfer and each of its
events is written to the journal before any stream sees it. After a
restart, a transfer that had ended replays from the journal (same run id,
sequences and times); one that was still running is "interrupted": nothing
resumes it, and when the control service re-attaches it gets a new run that
reports FAILED(INTERRUPTED). A cancel of an interrupted transfer ends its
run CANCELLED.

On SIGTERM the connector drains: health says NOT_SERVING, new transfers are
refused with UNAVAILABLE, running ones are served until they end or until
--drain-timeout passes; the streams still open then end with UNAVAILABLE
and the process exits 0 without cancelling them (the journal hands them
over to the next process).

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
import sqlite3
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
VERSION = "0.2.0"
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
        "baton/type/v1/availability.proto",
        "baton/type/v1/callback.proto",
        "baton/type/v1/chat.proto",
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


class Journal:
    """Every transfer and its events in SQLite, so that a restarted process
    neither forgets a transfer nor starts one again.

    WAL with synchronous=NORMAL: a committed write survives the process
    being killed (SIGKILL, an OOM kill); only a crash of the machine itself
    may lose the last ones.
    """

    SCHEMA = """
        CREATE TABLE IF NOT EXISTS transfers (
            handoff_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            target_name TEXT NOT NULL,
            deadline REAL NOT NULL,  -- seconds since the Unix epoch
            run_id TEXT NOT NULL,
            ended_at REAL,           -- seconds since the Unix epoch; NULL while running
            tenant TEXT NOT NULL DEFAULT '',  -- whose customer; only they re-attach or cancel
            PRIMARY KEY (handoff_id, attempt)
        );
        CREATE TABLE IF NOT EXISTS events (
            handoff_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            sequence INTEGER NOT NULL,
            event BLOB NOT NULL,     -- the StartTransferResponse, encoded
            PRIMARY KEY (handoff_id, attempt, sequence)
        );
    """

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # One connection shared by the threads, one writer at a time.
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.lock = threading.Lock()
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.executescript(self.SCHEMA)
        # A journal of an earlier version of this example has no tenants.
        columns = [row[1] for row in self.db.execute("PRAGMA table_info(transfers)")]
        if "tenant" not in columns:
            with self.db:
                self.db.execute("ALTER TABLE transfers ADD COLUMN tenant TEXT NOT NULL DEFAULT ''")

    def begin_run(self, transfer):
        """Notes a new run of a transfer; an earlier run's events (one
        interrupted by a restart) give way to it."""
        with self.lock, self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO transfers (handoff_id, attempt, target_name, deadline, "
                "run_id, ended_at, tenant) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                (*transfer.key, transfer.target_name, transfer.deadline, transfer.run_id,
                 transfer.tenant),
            )
            self.db.execute(
                "DELETE FROM events WHERE handoff_id = ? AND attempt = ?", transfer.key
            )

    def record(self, key, event, ended_at):
        """Writes an event; a terminal one (`ended_at` set) ends the transfer."""
        with self.lock, self.db:
            self.db.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?)",
                (*key, event.sequence, event.SerializeToString()),
            )
            if ended_at is not None:
                self.db.execute(
                    "UPDATE transfers SET ended_at = ? WHERE handoff_id = ? AND attempt = ?",
                    (ended_at, *key),
                )

    def forget(self, keys):
        with self.lock, self.db:
            for key in keys:
                self.db.execute("DELETE FROM transfers WHERE handoff_id = ? AND attempt = ?", key)
                self.db.execute("DELETE FROM events WHERE handoff_id = ? AND attempt = ?", key)

    def load(self):
        """[(key, target name, deadline, run id, ended_at, tenant, [encoded event])]"""
        with self.lock:
            transfers = self.db.execute(
                "SELECT handoff_id, attempt, target_name, deadline, run_id, ended_at, tenant "
                "FROM transfers"
            ).fetchall()
            events = {}
            for handoff_id, attempt, event in self.db.execute(
                "SELECT handoff_id, attempt, event FROM events ORDER BY sequence"
            ):
                events.setdefault((handoff_id, attempt), []).append(event)
        return [
            ((handoff_id, attempt), name, deadline, run_id, ended_at, tenant,
             events.get((handoff_id, attempt), []))
            for handoff_id, attempt, name, deadline, run_id, ended_at, tenant in transfers
        ]


def belongs_to(transfer, tenant):
    """Whether `tenant` may re-attach to or cancel `transfer`: the tenant it
    was started for, or any for one journalled before transfers had one."""
    return not transfer.tenant or transfer.tenant == tenant


class Transfer:
    """One run of a transfer: its event log, followed by every StartTransfer
    stream, and journalled event by event."""

    def __init__(self, pb, journal, key, target_name, deadline, tenant, run_id=None):
        self.pb = pb
        self.journal = journal
        self.key = key
        # Whose customer: another tenant neither re-attaches nor cancels it.
        self.tenant = tenant
        self.target_name = target_name
        self.deadline = deadline
        self.run_id = run_id or str(uuid.uuid4())
        self.events = []
        self.changed = threading.Condition()
        self.cancel_requested = threading.Event()
        # Seconds since the Unix epoch at the terminal event.
        self.ended_at = None
        # Running when a previous process stopped: nothing runs it now.
        self.interrupted = False
        # A new run for an interrupted transfer: it only reports that.
        self.after_restart = False

    def ended(self):
        with self.changed:
            return self.ended_at is not None

    def connected(self):
        with self.changed:
            return any(e.kind == self.pb.TRANSFER_EVENT_KIND_CONNECTED for e in self.events)

    def push(self, kind, detail="", failure_reason=0):
        """Journals and appends an event unless the transfer ended: one
        terminal event. The journal comes first: a stream never sees an
        event that a restart could lose. (If the journal cannot be written,
        this raises and the run stops here: the next process will find the
        transfer interrupted.)"""
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
            ended_at = time.time() if kind in terminal_kinds(pb) else None
            self.journal.record(self.key, event, ended_at)
            self.events.append(event)
            self.ended_at = ended_at
            self.changed.notify_all()
            return True

    def run(self, types_pb2):
        """Plays the target's steps, honouring cancel and the deadline."""
        pb = self.pb
        name = self.target_name
        if self.after_restart:
            steps = ["interrupted"]
        elif "busy" in name:
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
            if step == "interrupted":
                # The previous process was stopped while running this
                # transfer. It is never started again: whatever it reached
                # (a phone ringing, a human) may have reached it already.
                # A real connector releases here what that run held (hangs
                # up the call it placed), then reports the interruption.
                self.push(
                    pb.TRANSFER_EVENT_KIND_FAILED,
                    "interrupted by a restart of the connector; nothing was delivered twice",
                    types_pb2.FAILURE_REASON_INTERRUPTED,
                )
                return
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

    def __init__(self, pb, types_pb2, journal):
        self.pb = pb
        self.types = types_pb2
        self.journal = journal
        # Set on SIGTERM: new transfers are refused.
        self.draining = threading.Event()
        # Set when the drain is over: open streams end with UNAVAILABLE.
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.transfers = {}
        self.target_kinds = [types_pb2.TARGET_KIND_QUEUE, types_pb2.TARGET_KIND_SIP_URI]
        self.modes = [types_pb2.TRANSFER_MODE_WARM, types_pb2.TRANSFER_MODE_BLIND]
        self.limits = {
            pb.CONTEXT_MECHANISM_STRUCTURED: STRUCTURED_MAX_BYTES,
            pb.CONTEXT_MECHANISM_SIP_USER_TO_USER: USER_TO_USER_MAX_BYTES,
        }
        self.load()

    def load(self):
        """Takes over what the previous process journalled: ended transfers
        replay, running ones are now interrupted."""
        for key, name, deadline, run_id, ended_at, tenant, events in self.journal.load():
            transfer = Transfer(self.pb, self.journal, key, name, deadline, tenant, run_id)
            transfer.events = [self.pb.StartTransferResponse.FromString(e) for e in events]
            transfer.ended_at = ended_at
            transfer.interrupted = ended_at is None
            self.transfers[key] = transfer
        self.forget_old()
        interrupted = sum(t.interrupted for t in self.transfers.values())
        log.info(
            "journal %s: %d transfers, %d of them interrupted by a restart",
            self.journal.path,
            len(self.transfers),
            interrupted,
        )

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
        if not request.tenant:
            violations.append("tenant: is required: the tenant whose customer this is")
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
        """The transfer for (handoff id, attempt): the one running or ended
        (followed or replayed), else a new run, journalled before anything
        is streamed."""
        key = (request.handoff_id, request.attempt)
        with self.lock:
            self.forget_old()
            existing = self.transfers.get(key)
            if existing is not None and not belongs_to(existing, request.tenant):
                raise Refused(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"tenant: handoff {key[0]} attempt {key[1]} is another tenant's transfer",
                )
            if existing is not None and not existing.interrupted:
                log.info("StartTransfer repeated for %s; replaying", key)
                return existing
            if self.draining.is_set():
                raise Refused(
                    grpc.StatusCode.UNAVAILABLE,
                    "this connector is draining before it stops; retry (another replica, "
                    "or this connector once restarted)",
                )
            transfer = Transfer(self.pb, self.journal, key, name, deadline, request.tenant)
            transfer.after_restart = existing is not None
            try:
                self.journal.begin_run(transfer)
            except sqlite3.Error as error:
                log.error("cannot journal %s: %s", key, error)
                raise Refused(
                    grpc.StatusCode.UNAVAILABLE, "this connector cannot journal the transfer; retry"
                )
            self.transfers[key] = transfer
        if transfer.after_restart:
            log.info("StartTransfer for %s, interrupted by a restart: a new run reports it", key)
        threading.Thread(target=transfer.run, args=(self.types,), daemon=True).start()
        return transfer

    def forget_old(self):
        """Forgets transfers that ended more than KEEP_ENDED_SECONDS ago."""
        now = time.time()
        old = [
            key
            for key, t in self.transfers.items()
            if t.ended_at is not None and now - t.ended_at > KEEP_ENDED_SECONDS
        ]
        for key in old:
            del self.transfers[key]
        if old:
            self.journal.forget(old)

    def StartTransfer(self, request, context):
        try:
            _, name, deadline = self.validate(request)
            transfer = self.start(request, name, deadline)
        except Refused as refused:
            context.abort(refused.code, refused.message)
        sent = 0
        while True:
            with transfer.changed:
                while (
                    sent == len(transfer.events)
                    and not self.stopped.is_set()
                    and context.is_active()
                ):
                    transfer.changed.wait(0.5)
                batch = transfer.events[sent:]
            if not batch and self.stopped.is_set():
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
        pb = self.pb
        if not request.tenant:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "tenant: is required")
        outcome = pb.CANCEL_OUTCOME_UNKNOWN
        with self.lock:
            for (handoff_id, attempt), transfer in self.transfers.items():
                if handoff_id != request.handoff_id:
                    continue
                # Another tenant's transfer is unknown to this call.
                if not belongs_to(transfer, request.tenant):
                    continue
                if request.attempt not in (0, attempt):
                    continue
                if transfer.interrupted:
                    # Nothing runs it; a real connector releases here what
                    # the interrupted run held. Its run ends CANCELLED, and
                    # a StartTransfer from now on replays that.
                    transfer.interrupted = False
                    transfer.push(
                        pb.TRANSFER_EVENT_KIND_CANCELLED,
                        "cancelled by the control service after the connector restarted",
                    )
                    outcome = pb.CANCEL_OUTCOME_CANCELLED
                elif transfer.ended():
                    if outcome == pb.CANCEL_OUTCOME_UNKNOWN:
                        outcome = pb.CANCEL_OUTCOME_ALREADY_ENDED
                else:
                    transfer.cancel_requested.set()
                    outcome = pb.CANCEL_OUTCOME_CANCELLED
        log.info(
            "CancelTransfer %s/%s: %s",
            request.handoff_id,
            request.attempt,
            pb.CancelOutcome.Name(outcome),
        )
        return pb.CancelTransferResponse(
            cancelled=outcome == pb.CANCEL_OUTCOME_CANCELLED, outcome=outcome
        )

    # This connector reports neither context_updates nor chat in its info,
    # so the control service never calls these; the contract's answer to a
    # call anyway is UNIMPLEMENTED.
    def UpdateTransfer(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{NAME} does not take context updates")

    def ConverseTransfer(self, request_iterator, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{NAME} does not relay chat")

    def GetAvailability(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{NAME} does not report availability")

    def drain(self, timeout):
        """Refuses new transfers and waits, at most `timeout` seconds, for
        the running ones to end; returns how many still run."""
        self.draining.set()
        until = time.monotonic() + timeout
        while True:
            with self.lock:
                running = [
                    t for t in self.transfers.values() if not t.interrupted and not t.ended()
                ]
            if not running or time.monotonic() >= until:
                return len(running)
            time.sleep(0.05)

    def stop(self):
        """Ends the streams still open with UNAVAILABLE; their transfers are
        not cancelled."""
        self.stopped.set()
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
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".baton/python-example"),
        help="where the transfer journal (transfers.sqlite3) is kept",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds that SIGTERM waits for running transfers to end",
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    # Removed when the process ends.
    stubs = tempfile.TemporaryDirectory(prefix="baton-stubs-")
    pb, pb_grpc, types_pb2 = generate_stubs(args.proto_dir, Path(stubs.name))
    journal = Journal(args.data_dir / "transfers.sqlite3")

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    connector = Connector(pb, types_pb2, journal)
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
    log.info("draining for at most %ss: not serving, new transfers refused", args.drain_timeout)
    # Refusing first, so that whoever sees NOT_SERVING is refused.
    connector.draining.set()
    for service in ("", SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    running = connector.drain(args.drain_timeout)
    if running:
        log.info(
            "drain timeout passed; %d running transfers handed over through the journal", running
        )
    else:
        log.info("drained: no transfer runs")
    connector.stop()
    server.stop(grace=2).wait()
    stubs.cleanup()
    log.info("stopped")


if __name__ == "__main__":
    main()
