#!/usr/bin/env python3
"""A local Amazon Connect that checks every request against Amazon's own
published service model and answers as the API reference documents.

The model is botocore's copy of the Connect service definition
(``botocore/data/connect/2017-08-08/service-2.json``): each request is
matched to an operation by method and path template, then checked member by
member (required members, types, string lengths, patterns, enum values, list
lengths; unknown members refused). Every request must carry a valid AWS
Signature Version 4 for service ``connect``: the signature is computed again
with botocore's own signer (``botocore.auth.SigV4Auth``) over the headers the
request says it signed, and compared. A missing signature, an unknown access
key, a wrong secret or a date more than 5 minutes off is refused with 403
and the error AWS sends for it. Each operation has its own token bucket (the
default quota of most contact APIs: 2 requests per second, a burst of 5);
beyond it the answer is 429 ThrottlingException, and the throttles are
counted.

Errors are restJson1 errors: the status of the error shape, the
``x-amzn-ErrorType`` header naming it, and ``{"Message": ...}``.

On top of the checks it plays an instance: contacts in a flow (created by the
test, or on first sight for ids ``task-<32 hex>``, ``voice-…``, ``chat-…``,
``email-…``), queues with or without agents, contact flows, users and quick
connects. TransferContact works for TASK and EMAIL contacts only (as
documented) and creates the transferred contact; a VOICE or CHAT contact is
routed by its own flow when the ``baton_transfer`` attributes ask for it (the
flow the README asks customers to build). An agent is offered, accepts and is
connected on a schedule set per queue.

Test-only endpoints live under ``/_contract/`` (never a Connect path):
``POST /_contract/contacts`` creates a contact, ``GET /_contract/contacts/ID``
shows one, ``POST /_contract/contacts/ID/disconnect`` hangs it up,
``POST /_contract/queues/ID/metrics`` sets a queue's real-time figures per
channel (``{"VOICE": {"AGENTS_ONLINE": 4, ...}}``) for GetCurrentMetricData,
``GET /_contract/log`` lists every request with its operation, status and
error type, ``GET /_contract/stats`` counts requests and throttles.

Usage: contract_server.py --config instance.json [--port 0]
Prints one line ``{"ready": {"service": "connect-contract", "http": "127.0.0.1:PORT"}}``.
"""

import argparse
import datetime
import gzip
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ATTRIBUTES_LIMIT = 32768
MAX_TRANSFERS = 11
SKEW_SECONDS = 300
METRIC_UNITS = {
    "AGENTS_ONLINE": "COUNT",
    "AGENTS_AVAILABLE": "COUNT",
    "AGENTS_ON_CALL": "COUNT",
    "AGENTS_NON_PRODUCTIVE": "COUNT",
    "AGENTS_AFTER_CONTACT_WORK": "COUNT",
    "AGENTS_ERROR": "COUNT",
    "AGENTS_STAFFED": "COUNT",
    "CONTACTS_IN_QUEUE": "COUNT",
    "OLDEST_CONTACT_AGE": "SECONDS",
    "CONTACTS_SCHEDULED": "COUNT",
    "AGENTS_ON_CONTACT": "COUNT",
    "SLOTS_ACTIVE": "COUNT",
    "SLOTS_AVAILABLE": "COUNT",
    "ESTIMATED_WAIT_TIME": "SECONDS",
}
# Flow types TransferContact accepts: inbound, transfer to agent, transfer to queue.
TRANSFER_FLOW_TYPES = {"CONTACT_FLOW", "AGENT_TRANSFER", "QUEUE_TRANSFER"}
CONTACT_ID = re.compile(r"^(task|voice|chat|email)-[0-9a-f]{32}$")
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def load_model():
    path = os.path.join(
        os.path.dirname(botocore.__file__), "data", "connect", "2017-08-08", "service-2.json"
    )
    if os.path.exists(path):
        with open(path, "rb") as f:
            return json.load(f)
    with gzip.open(path + ".gz", "rb") as f:
        return json.load(f)


class ApiError(Exception):
    def __init__(self, status, error_type, message, **extra):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.extra = extra


class Model:
    """Operations by method and path, and validation of their input."""

    def __init__(self, model):
        self.shapes = model["shapes"]
        self.operations = []
        for name, op in model["operations"].items():
            uri = op["http"]["requestUri"]
            path, _, query = uri.partition("?")
            names = re.findall(r"\{([^}+]+)\+?\}", path)
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(path)) + "$"
            self.operations.append((op["http"]["method"], re.compile(pattern), names, name, op))

    def match(self, method, path):
        found_path = False
        for op_method, pattern, names, name, op in self.operations:
            m = pattern.match(path)
            if m:
                found_path = True
                if op_method == method:
                    return name, op, dict(zip(names, (unquote(v) for v in m.groups())))
        if found_path:
            raise ApiError(405, "MethodNotAllowedException", f"{method} is not allowed on {path}")
        raise ApiError(404, "UnknownOperationException", f"no operation at {method} {path}")

    def input_of(self, op, labels, query, body):
        """The operation's input from its path labels, query and JSON body."""
        if "input" not in op:
            return {}
        shape = self.shapes[op["input"]["shape"]]
        params = {}
        body_members = {}
        for member, ref in shape.get("members", {}).items():
            location = ref.get("location")
            wire = ref.get("locationName", member)
            if location == "uri":
                if wire in labels:
                    params[member] = labels[wire]
            elif location == "querystring":
                if wire in query:
                    value = query[wire]
                    target = self.shapes[ref["shape"]]
                    if target["type"] == "integer":
                        try:
                            value = int(value)
                        except ValueError:
                            raise ApiError(400, "InvalidParameterException", f"{wire} must be an integer")
                    params[member] = value
            elif location == "header":
                pass
            else:
                body_members[member] = ref
        unknown_query = set(query) - {
            ref.get("locationName", m)
            for m, ref in shape.get("members", {}).items()
            if ref.get("location") == "querystring"
        }
        if unknown_query:
            raise ApiError(400, "InvalidParameterException", f"unknown query parameters {sorted(unknown_query)}")
        if body:
            if not isinstance(body, dict):
                raise ApiError(400, "SerializationException", "the body must be a JSON object")
            for key, value in body.items():
                if key not in body_members:
                    raise ApiError(400, "SerializationException", f"unknown member {key!r} in the body")
                params[key] = value
        self.validate(params, op["input"]["shape"], "")
        return params

    def validate(self, value, shape_name, path):
        shape = self.shapes[shape_name]
        kind = shape["type"]
        where = path or "input"

        def bad(message):
            raise ApiError(400, "InvalidParameterException", f"{where}: {message}")

        if kind == "structure":
            if not isinstance(value, dict):
                bad("must be an object")
            members = shape.get("members", {})
            for required in shape.get("required", []):
                if required not in value or value[required] is None:
                    raise ApiError(400, "InvalidParameterException", f"{path + '.' if path else ''}{required}: is required")
            for key, item in value.items():
                if key not in members:
                    bad(f"unknown member {key!r}")
                self.validate(item, members[key]["shape"], f"{path + '.' if path else ''}{key}")
        elif kind == "list":
            if not isinstance(value, list):
                bad("must be a list")
            self.check_length(len(value), shape, bad)
            for i, item in enumerate(value):
                self.validate(item, shape["member"]["shape"], f"{where}[{i}]")
        elif kind == "map":
            if not isinstance(value, dict):
                bad("must be a map")
            self.check_length(len(value), shape, bad)
            for key, item in value.items():
                self.validate(key, shape["key"]["shape"], f"{where} key")
                self.validate(item, shape["value"]["shape"], f"{where}[{key}]")
        elif kind == "string":
            if not isinstance(value, str):
                bad("must be a string")
            self.check_length(len(value), shape, bad)
            if "enum" in shape and value not in shape["enum"]:
                bad(f"{value!r} is not one of {shape['enum']}")
            if "pattern" in shape and not re.search(shape["pattern"], value):
                bad(f"does not match {shape['pattern']}")
        elif kind in ("integer", "long"):
            if not isinstance(value, int) or isinstance(value, bool):
                bad("must be an integer")
            if "min" in shape and value < shape["min"]:
                bad(f"must be at least {shape['min']}")
            if "max" in shape and value > shape["max"]:
                bad(f"must be at most {shape['max']}")
        elif kind in ("double", "float"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                bad("must be a number")
        elif kind == "boolean":
            if not isinstance(value, bool):
                bad("must be a boolean")
        elif kind == "timestamp":
            if not isinstance(value, (int, float)):
                bad("must be epoch seconds")

    @staticmethod
    def check_length(length, shape, bad):
        if "min" in shape and length < shape["min"]:
            bad(f"length {length} is below the minimum {shape['min']}")
        if "max" in shape and length > shape["max"]:
            bad(f"length {length} is above the maximum {shape['max']}")


class Bucket:
    """A token bucket: `rate` per second, `burst` at once."""

    def __init__(self, rate, burst):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        # A little slack for clocks: a request due exactly now is not throttled.
        if self.tokens >= 1.0 - 1e-3:
            self.tokens -= 1.0
            return True
        return False


def now_epoch():
    return round(time.time(), 3)


class Instance:
    def __init__(self, config):
        self.lock = threading.RLock()
        self.instance_id = config["instance_id"]
        self.region = config.get("region", "us-east-1")
        self.keys = {k["access_key_id"]: k["secret_access_key"] for k in config["credentials"]}
        rate = config.get("rate_per_second", 2.0)
        burst = config.get("burst", 5)
        self.rate = (rate, burst)
        self.buckets = {}
        self.queues = config.get("queues", {})
        self.flows = config.get("contact_flows", {})
        self.users = config.get("users", {})
        self.quick_connects = config.get("quick_connects", {})
        self.contacts = {}
        self.tokens = {}
        self.log = []
        self.throttled = 0

    # --- test endpoints -------------------------------------------------

    def create_contact(self, spec):
        with self.lock:
            contact_id = spec.get("id") or str(uuid.uuid4())
            channel = spec.get("channel", "TASK")
            self.contacts[contact_id] = {
                "Id": contact_id,
                "InitialContactId": spec.get("initial_contact_id", contact_id),
                "Channel": channel,
                "InitiationMethod": spec.get("initiation_method", "INBOUND" if channel == "VOICE" else "API"),
                "InitiationTimestamp": now_epoch(),
                "Attributes": dict(spec.get("attributes", {})),
                "transfers": 0,
                "schedule": [],
            }
            return self.contacts[contact_id]

    def contact(self, contact_id):
        with self.lock:
            if contact_id not in self.contacts and CONTACT_ID.match(contact_id):
                self.create_contact({"id": contact_id, "channel": contact_id.split("-")[0].upper()})
            contact = self.contacts.get(contact_id)
            if contact is not None:
                self.advance(contact)
            return contact

    def advance(self, contact):
        """Applies the steps of the contact's schedule that are due."""
        now = time.monotonic()
        while contact["schedule"] and contact["schedule"][0][0] <= now:
            _, step = contact["schedule"].pop(0)
            step(contact)

    def disconnect(self, contact):
        contact.setdefault("DisconnectTimestamp", now_epoch())
        contact["schedule"] = []

    def enqueue(self, contact, queue_id, user_id=None):
        """The contact waits in a queue (or a user's queue) for an agent."""
        if queue_id is not None:
            contact["QueueInfo"] = {"Id": queue_id, "EnqueueTimestamp": now_epoch()}
        contact.pop("AgentInfo", None)
        contact["schedule"] = []
        if user_id is not None:
            agent = self.users[user_id]
        else:
            agent = self.queues[queue_id].get("agent")
        if not agent:
            return  # nobody staffed: it waits
        start = time.monotonic()
        agent_id = agent.get("user_id", user_id)

        def offered(c):
            c["AgentInfo"] = {"Id": agent_id}

        def connected(c):
            stamp = now_epoch()
            c["AgentInfo"].update({"AcceptedByAgentTimestamp": stamp, "ConnectedToAgentTimestamp": stamp})

        contact["schedule"] = [
            (start + agent.get("offer_after_ms", 100) / 1000, offered),
            (start + agent.get("connect_after_ms", 200) / 1000, connected),
        ]

    def bucket(self, operation):
        with self.lock:
            if operation not in self.buckets:
                self.buckets[operation] = Bucket(*self.rate)
            return self.buckets[operation]

    # --- operations -----------------------------------------------------

    def check_instance(self, instance_id):
        if instance_id != self.instance_id:
            raise ApiError(404, "ResourceNotFoundException", f"Instance {instance_id} not found")

    def live_contact(self, contact_id):
        contact = self.contact(contact_id)
        if contact is None:
            raise ApiError(404, "ResourceNotFoundException", f"Contact {contact_id} not found")
        return contact

    def DescribeContact(self, p):
        self.check_instance(p["InstanceId"])
        contact = self.live_contact(p["ContactId"])
        public = {k: v for k, v in contact.items() if k not in ("transfers", "schedule")}
        public["Arn"] = f"arn:aws:connect:{self.region}:123456789012:instance/{self.instance_id}/contact/{contact['Id']}"
        return {"Contact": public}

    def UpdateContactAttributes(self, p):
        self.check_instance(p["InstanceId"])
        contact = self.live_contact(p["InitialContactId"])
        for key in p["Attributes"]:
            if not ATTRIBUTE_KEY.match(key):
                raise ApiError(400, "InvalidParameterException", f"Attribute key {key!r} may include only alphanumeric, dash, and underscore characters")
        merged = dict(contact["Attributes"])
        merged.update(p["Attributes"])
        size = sum(len(k.encode()) + len(v.encode()) for k, v in merged.items())
        if size > ATTRIBUTES_LIMIT:
            raise ApiError(400, "InvalidParameterException", f"The contact's attributes would be {size} bytes, above the 32 KB limit")
        contact["Attributes"] = merged
        # Every contact of the same initial contact shares its attributes.
        for other in self.contacts.values():
            if other["InitialContactId"] == contact["InitialContactId"]:
                other["Attributes"] = merged
        self.flow_reads_attributes(contact)
        return {}

    def flow_reads_attributes(self, contact):
        """A VOICE or CHAT contact's flow transfers it when asked to."""
        attributes = contact["Attributes"]
        if contact["Channel"] not in ("VOICE", "CHAT") or attributes.get("baton_transfer") != "requested":
            return
        if "DisconnectTimestamp" in contact:
            return
        queue_id = attributes.get("baton_transfer_queue_id")
        user_id = attributes.get("baton_transfer_user_id")
        if queue_id in self.queues:
            self.enqueue(contact, queue_id)
        elif user_id in self.users:
            self.enqueue(contact, None, user_id)
        # Else the flow's Set working queue block fails: the contact stays.

    def TransferContact(self, p):
        self.check_instance(p["InstanceId"])
        key = p.get("ClientToken")
        request = {k: v for k, v in p.items() if k != "ClientToken"}
        if key is not None and key in self.tokens:
            seen, answer = self.tokens[key]
            if seen != request:
                raise ApiError(409, "IdempotencyException", "An idempotent request with this ClientToken had other parameters")
            return answer
        if "QueueId" in p and "UserId" in p:
            raise ApiError(400, "InvalidRequestException", "Do not use both QueueId and UserId in the same call")
        if "QueueId" not in p and "UserId" not in p:
            raise ApiError(400, "InvalidRequestException", "QueueId or UserId is required")
        contact = self.live_contact(p["ContactId"])
        if contact["Channel"] not in ("TASK", "EMAIL"):
            raise ApiError(400, "InvalidRequestException", "Transfer is only supported for TASK and EMAIL contacts")
        if "DisconnectTimestamp" in contact:
            raise ApiError(400, "InvalidRequestException", "The contact is not active")
        flow = self.flows.get(p["ContactFlowId"])
        if flow is None:
            raise ApiError(404, "ResourceNotFoundException", f"Contact flow {p['ContactFlowId']} not found")
        if flow not in TRANSFER_FLOW_TYPES:
            raise ApiError(400, "InvalidRequestException", f"A {flow} flow cannot be used to transfer")
        if "QueueId" in p and p["QueueId"] not in self.queues:
            raise ApiError(404, "ResourceNotFoundException", f"Queue {p['QueueId']} not found")
        if "UserId" in p and p["UserId"] not in self.users:
            raise ApiError(404, "ResourceNotFoundException", f"User {p['UserId']} not found")
        if contact["transfers"] >= MAX_TRANSFERS:
            raise ApiError(402, "ServiceQuotaExceededException", "A contact cannot be transferred more than 11 times")
        new_id = str(uuid.uuid4())
        transferred = self.create_contact({
            "id": new_id,
            "channel": contact["Channel"],
            "initial_contact_id": contact["InitialContactId"],
            "initiation_method": "TRANSFER",
            "attributes": contact["Attributes"],
        })
        transferred["PreviousContactId"] = contact["Id"]
        transferred["transfers"] = contact["transfers"] + 1
        self.disconnect(contact)
        self.enqueue(transferred, p.get("QueueId"), p.get("UserId"))
        answer = {
            "ContactId": new_id,
            "ContactArn": f"arn:aws:connect:{self.region}:123456789012:instance/{self.instance_id}/contact/{new_id}",
        }
        if key is not None:
            self.tokens[key] = (request, answer)
        return answer

    def StopContact(self, p):
        self.check_instance(p["InstanceId"])
        contact = self.live_contact(p["ContactId"])
        if contact["Channel"] == "VOICE" and contact["InitiationMethod"] in (
            "DISCONNECT", "TRANSFER", "QUEUE_TRANSFER", "EXTERNAL_OUTBOUND", "MONITOR"
        ):
            raise ApiError(400, "InvalidRequestException", "StopContact does not work for this voice contact")
        self.disconnect(contact)
        return {}

    def DescribeQuickConnect(self, p):
        self.check_instance(p["InstanceId"])
        qc = self.quick_connects.get(p["QuickConnectId"])
        if qc is None:
            raise ApiError(404, "ResourceNotFoundException", f"Quick connect {p['QuickConnectId']} not found")
        return {"QuickConnect": {
            "QuickConnectARN": f"arn:aws:connect:{self.region}:123456789012:instance/{self.instance_id}/transfer-destination/{p['QuickConnectId']}",
            "QuickConnectId": p["QuickConnectId"],
            "Name": qc.get("name", p["QuickConnectId"]),
            "QuickConnectConfig": qc["config"],
        }}

    def GetCurrentMetricData(self, p):
        self.check_instance(p["InstanceId"])
        filters = p["Filters"]
        groupings = p.get("Groupings", [])
        channels = filters.get("Channels", [])
        if "EMAIL" in channels:
            raise ApiError(400, "InvalidParameterException", "Filters.Channels: VOICE, CHAT, and TASK channels are supported")
        if "CHANNEL" in groupings and not channels:
            raise ApiError(400, "InvalidParameterException", "Grouping by CHANNEL needs a Channels filter")
        if "Queues" in filters and "RoutingProfiles" in filters:
            raise ApiError(400, "InvalidParameterException", "You cannot filter by both queue and routing profile")
        if len(set(groupings)) != len(groupings):
            raise ApiError(400, "InvalidParameterException", "Groupings: a grouping is given twice")
        names = []
        for metric in p["CurrentMetrics"]:
            name, unit = metric.get("Name"), metric.get("Unit")
            if name is None or METRIC_UNITS.get(name) != unit:
                raise ApiError(400, "InvalidParameterException", f"CurrentMetrics: {name} is measured in {METRIC_UNITS.get(name)}, not {unit}")
            if name in names:
                raise ApiError(400, "InvalidParameterException", f"CurrentMetrics: {name} is asked for twice")
            names.append(name)
        if "ROUTING_PROFILE" in groupings:
            if "Queues" not in filters and "RoutingProfiles" not in filters:
                raise ApiError(400, "InvalidParameterException", "Grouping by ROUTING_PROFILE needs a queue or routing profile filter")
            needing = {"CONTACTS_SCHEDULED", "CONTACTS_IN_QUEUE", "OLDEST_CONTACT_AGE"} & set(names)
            if needing and "RoutingProfiles" not in filters:
                raise ApiError(400, "InvalidParameterException", f"Grouping by ROUTING_PROFILE needs a routing profile filter for {sorted(needing)}")
        if "ESTIMATED_WAIT_TIME" in names:
            # The API reference: "Filter by a list of [Queues] and a list of
            # [Channels], group by ["QUEUE", "CHANNEL"]", or one queue, one
            # channel and RoutingStepExpressions grouped by
            # ROUTING_STEP_EXPRESSION.
            by_queue = filters.get("Queues") and channels and groupings == ["QUEUE", "CHANNEL"]
            by_step = (len(filters.get("Queues", [])) == 1 and len(channels) == 1
                       and filters.get("RoutingStepExpressions") and groupings == ["ROUTING_STEP_EXPRESSION"])
            if not (by_queue or by_step):
                raise ApiError(400, "InvalidParameterException",
                               "ESTIMATED_WAIT_TIME needs Queues and Channels filters grouped by [QUEUE, CHANNEL]")
        results = []
        # Grouped by channel: one result per queue and channel asked for;
        # else one per queue, over the channels asked for (all without a
        # Channels filter).
        channel_groups = [[c] for c in channels] if "CHANNEL" in groupings else [channels]
        for queue_id in filters.get("Queues", []):
            queue = self.queues.get(queue_id)
            if queue is None:
                continue
            for group in channel_groups:
                values = self.queue_figures(queue_id, queue, group)
                collections = []
                for metric in p["CurrentMetrics"]:
                    entry = {"Metric": {"Name": metric["Name"], "Unit": metric["Unit"]}}
                    value = values.get(metric["Name"], 0.0)
                    if value is not None:
                        entry["Value"] = float(value)
                    collections.append(entry)
                dimensions = {"Queue": {"Id": queue_id, "Arn": f"arn:aws:connect:{self.region}:123456789012:instance/{self.instance_id}/queue/{queue_id}"}}
                if "CHANNEL" in groupings:
                    dimensions["Channel"] = group[0]
                results.append({"Dimensions": dimensions, "Collections": collections})
        return {"MetricResults": results, "DataSnapshotTime": now_epoch(), "ApproximateTotalCount": len(results)}

    def queue_figures(self, queue_id, queue, channels):
        """The figures of one queue over `channels` (all when empty): the
        contacts waiting in it, and what the test set for the queue per
        channel (``metrics``: channel -> metric name -> value, a null value
        being one Connect cannot compute). An agent may serve several
        channels, so agent counts over several channels are their maximum,
        not their sum."""
        waiting = [c for c in self.contacts.values()
                   if (self.advance(c) or True)
                   and c.get("QueueInfo", {}).get("Id") == queue_id
                   and "AgentInfo" not in c and "DisconnectTimestamp" not in c
                   and (not channels or c["Channel"] in channels)]
        by_channel = queue.get("metrics", {})
        chosen = [by_channel[c] for c in (channels or sorted(by_channel)) if c in by_channel]
        in_queue = queue.get("contacts_ahead", 0) + len(waiting) + sum(m.get("CONTACTS_IN_QUEUE") or 0 for m in chosen)
        oldest = max([time.time() - c["QueueInfo"]["EnqueueTimestamp"] for c in waiting] + [queue.get("oldest_contact_age", 0)])
        values = {
            "CONTACTS_IN_QUEUE": float(in_queue),
            "OLDEST_CONTACT_AGE": float(int(oldest)) if in_queue else 0.0,
            "ESTIMATED_WAIT_TIME": queue.get("estimated_wait_time"),
        }
        for name in METRIC_UNITS:
            if name == "CONTACTS_IN_QUEUE":
                continue
            given = [m[name] for m in chosen if name in m]
            if given:
                numbers = [v for v in given if v is not None]
                values[name] = max(numbers) if numbers else None
        return values

    def set_queue_metrics(self, queue_id, metrics):
        queue = self.queues.get(queue_id)
        if queue is None:
            return False
        for channel, figures in metrics.items():
            if channel not in ("VOICE", "CHAT", "TASK") or any(name not in METRIC_UNITS for name in figures):
                raise ValueError(f"not a channel and metrics: {channel} {figures}")
        queue["metrics"] = metrics
        return True

    # --- authentication -------------------------------------------------

    def authenticate(self, method, url, headers, body):
        auth = headers.get("authorization")
        if not auth:
            raise ApiError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        m = re.match(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$", auth)
        if not m:
            raise ApiError(400, "IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders and Signature")
        key_id, day, region, service, signed, signature = m.groups()
        if key_id not in self.keys:
            raise ApiError(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        if region != self.region or service != "connect":
            raise ApiError(403, "InvalidSignatureException", f"Credential should be scoped to a valid region and to service connect, not {region}/{service}")
        amz_date = headers.get("x-amz-date", "")
        try:
            at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise ApiError(400, "IncompleteSignatureException", "X-Amz-Date is missing or malformed")
        if amz_date[:8] != day:
            raise ApiError(403, "InvalidSignatureException", "Date in Credential scope does not match X-Amz-Date")
        skew = abs((datetime.datetime.now(datetime.timezone.utc) - at).total_seconds())
        if skew > SKEW_SECONDS:
            raise ApiError(403, "InvalidSignatureException", f"Signature expired: {amz_date} is not within 5 minutes of the server's time")
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names:
            raise ApiError(403, "InvalidSignatureException", "host and x-amz-date must be signed")
        request = AWSRequest(method=method, url=url, data=body,
                            headers={n: headers.get(n, "") for n in names})
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(key_id, self.keys[key_id], headers.get("x-amz-security-token")), "connect", region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if expected != signature:
            raise ApiError(403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")


SIMULATED = {"DescribeContact", "UpdateContactAttributes", "TransferContact", "StopContact",
             "DescribeQuickConnect", "GetCurrentMetricData"}


def make_handler(model, instance):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body, headers=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

        def do_PUT(self):
            self.handle_any("PUT")

        def do_DELETE(self):
            self.handle_any("DELETE")

        def handle_any(self, method):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            if parts.path.startswith("/_contract/"):
                return self.test_endpoint(method, parts.path, body)
            headers = {k.lower(): v for k, v in self.headers.items()}
            url = f"http://{headers.get('host', '')}{self.path}"
            entry = {"method": method, "path": parts.path, "operation": None, "status": 200, "error": None, "at": time.time()}
            try:
                name, op, labels = model.match(method, parts.path)
                entry["operation"] = name
                instance.authenticate(method, url, headers, body)
                if not instance.bucket(name).take():
                    with instance.lock:
                        instance.throttled += 1
                    raise ApiError(429, "ThrottlingException", "Rate exceeded")
                if body:
                    if headers.get("content-type", "").split(";")[0].strip() != "application/json":
                        raise ApiError(400, "SerializationException", "Content-Type must be application/json")
                    try:
                        payload = json.loads(body)
                    except ValueError:
                        raise ApiError(400, "SerializationException", "the body is not JSON")
                else:
                    payload = None
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                params = model.input_of(op, labels, query, payload)
                entry["params"] = params
                if name not in SIMULATED:
                    raise ApiError(501, "NotImplemented", f"{name} is valid but not simulated by the contract server")
                with instance.lock:
                    answer = getattr(instance, name)(params)
                self.reply(200, answer)
            except ApiError as e:
                shape = model.shapes.get(e.error_type, {})
                e.status = shape.get("error", {}).get("httpStatusCode", e.status)
                entry["status"] = e.status
                entry["error"] = e.error_type
                entry["message"] = e.message
                self.reply(e.status, {"Message": e.message, **e.extra}, [("x-amzn-ErrorType", e.error_type)])
            finally:
                with instance.lock:
                    instance.log.append(entry)

        def test_endpoint(self, method, path, body):
            with instance.lock:
                if method == "POST" and path == "/_contract/contacts":
                    contact = instance.create_contact(json.loads(body))
                    return self.reply(200, public_contact(contact))
                m = re.match(r"^/_contract/contacts/([^/]+)(/disconnect)?$", path)
                if m:
                    contact = instance.contact(unquote(m.group(1)))
                    if contact is None:
                        return self.reply(404, {"Message": "no such contact"})
                    if m.group(2) and method == "POST":
                        instance.disconnect(contact)
                    return self.reply(200, public_contact(contact))
                if path == "/_contract/contacts":
                    return self.reply(200, [public_contact(c) for c in instance.contacts.values()])
                m = re.match(r"^/_contract/queues/([^/]+)/metrics$", path)
                if m and method == "POST":
                    try:
                        found = instance.set_queue_metrics(unquote(m.group(1)), json.loads(body))
                    except ValueError as e:
                        return self.reply(400, {"Message": str(e)})
                    if not found:
                        return self.reply(404, {"Message": "no such queue"})
                    return self.reply(200, {})
                if path == "/_contract/log":
                    return self.reply(200, instance.log)
                if path == "/_contract/stats":
                    by_operation = {}
                    for e in instance.log:
                        by_operation.setdefault(e["operation"] or "unknown", {}).setdefault(str(e["status"]), 0)
                        by_operation[e["operation"] or "unknown"][str(e["status"])] += 1
                    return self.reply(200, {"throttled": instance.throttled, "requests": len(instance.log), "by_operation": by_operation})
            self.reply(404, {"Message": "unknown test endpoint"})

    return Handler


def public_contact(contact):
    return {k: v for k, v in contact.items() if k != "schedule"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    model = Model(load_model())
    instance = Instance(config)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(model, instance))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(json.dumps({"ready": {"service": "connect-contract", "http": f"{host}:{port}"}}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
