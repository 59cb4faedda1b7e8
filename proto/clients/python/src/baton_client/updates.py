"""What a runtime follows: one typed update per handoff event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping, Optional, Sequence, Tuple, Union

from google.protobuf.timestamp_pb2 import Timestamp

from ._proto.baton.handoff.v1 import handoff_pb2 as handoff_v1
from ._proto.baton.type.v1 import handoff_context_pb2 as types_v1

#: The states after which nothing more happens to a handoff.
TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "HANDED_BACK"})


@dataclass(frozen=True)
class HandoffUpdate:
    """One step of a handoff, as the runtime needs it.

    `say` is what the AI tells the customer now, in the conversation's
    language: set on the first update (the handoff was stored and a human is
    being found: "I'm connecting you with a specialist…", with the wait when
    the queue reports one). Other updates leave it empty; the runtime keeps
    the line warm in its own words and uses `queue_position`,
    `estimated_wait_seconds` and `failure_reason` to say more.
    """

    handoff_id: str
    sequence: int
    #: The event, without its prefix: `CREATED`, `QUEUED`, `CONNECTED`, …
    kind: str
    #: The handoff's state after the event: `ROUTING`, `QUEUED`, …
    state: str
    event: handoff_v1.HandoffEvent
    say: str = ""
    say_language: str = ""

    @property
    def terminal(self) -> bool:
        """Nothing more will happen: completed, failed, cancelled or handed
        back (the runtime owns the conversation again)."""
        return self.state in TERMINAL_STATES

    @property
    def connected(self) -> bool:
        """A human has the customer."""
        return self.state == "CONNECTED"

    @property
    def queue_position(self) -> Optional[int]:
        """The customer's place in line, on QUEUED."""
        status = self.event.queue_status
        return status.position if self.event.HasField("queue_status") else None

    @property
    def estimated_wait_seconds(self) -> Optional[float]:
        """The queue's estimate of the wait, on QUEUED when it gives one."""
        status = self.event.queue_status
        if not (self.event.HasField("queue_status") and status.HasField("estimated_wait")):
            return None
        return status.estimated_wait.ToTimedelta().total_seconds()

    @property
    def failure_reason(self) -> str:
        """Why a target or the handoff failed (`NO_AGENTS`, `NO_ANSWER`, …),
        on TARGET_FAILED, FAILED and CANCELLED; empty otherwise."""
        if not self.event.HasField("failure"):
            return ""
        return _short(types_v1.FailureReason.Name(self.event.failure.reason), "FAILURE_REASON_")

    @staticmethod
    def of(event: handoff_v1.HandoffEvent, handoff: Optional[handoff_v1.Handoff] = None) -> "HandoffUpdate":
        """The update of `event`; `handoff`, the handoff as created, gives
        the CREATED update its phrase."""
        say, language = "", ""
        if handoff is not None and event.kind == handoff_v1.HANDOFF_EVENT_KIND_CREATED:
            say, language = handoff.customer_message, handoff.customer_message_language
        return HandoffUpdate(
            handoff_id=event.handoff_id,
            sequence=event.sequence,
            kind=_short(handoff_v1.HandoffEventKind.Name(event.kind), "HANDOFF_EVENT_KIND_"),
            state=_short(handoff_v1.HandoffState.Name(event.state), "HANDOFF_STATE_"),
            event=event,
            say=say,
            say_language=language,
        )


def watch_is_over(handoff: handoff_v1.Handoff, after: int) -> bool:
    """Whether `handoff` has ended and a watcher that saw event `after` has
    seen its last event."""
    state = _short(handoff_v1.HandoffState.Name(handoff.state), "HANDOFF_STATE_")
    return state in TERMINAL_STATES and handoff.last_sequence <= after


def _short(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


Turn = Tuple[str, str]
"""A transcript turn: (speaker, text), speaker `customer`, `ai` or `human`."""

_SPEAKERS = {
    "customer": types_v1.SPEAKER_CUSTOMER,
    "ai": types_v1.SPEAKER_AI,
    "human": types_v1.SPEAKER_HUMAN,
}
_CHANNELS = {"voice": types_v1.CHANNEL_VOICE, "chat": types_v1.CHANNEL_CHAT}


def handoff_request(
    *,
    summary: str,
    queue: str = "",
    phone_number: str = "",
    sip_uri: str = "",
    channel: str = "voice",
    language: str = "en",
    intent: str = "",
    intent_confidence: float = 0.0,
    entities: Mapping[str, str] = {},
    sensitive_entities: Mapping[str, str] = {},
    transcript: Iterable[Turn] = (),
    reason: Union[str, "handoff_v1.EscalationDecision", None] = None,
    sip_call_id: str = "",
    request_id: str = "",
) -> handoff_v1.CreateHandoffRequest:
    """A CreateHandoffRequest from plain values, for the common cases; build
    the message yourself for the rest (callbacks, attended transfers, notes).

    Exactly one of `queue`, `phone_number` (E.164) or `sip_uri` names the
    target. `reason` is an escalation kind (`explicit_request`, `distress`,
    …) or the decision `evaluate()` returned, whose first trigger is the
    reason. `request_id` is the idempotency key; left empty, one is made.
    """
    targets = [t for t in (queue, phone_number, sip_uri) if t]
    if len(targets) != 1:
        raise ValueError("name exactly one target: queue, phone_number or sip_uri")
    request = handoff_v1.CreateHandoffRequest(request_id=request_id or new_request_id())
    request.conversation.channel = channel_of(channel)
    request.conversation.language = language
    if sip_call_id:
        request.conversation.call.sip_call_id = sip_call_id
    context = request.context
    context.summary = summary
    if intent:
        context.intent.name = intent
        context.intent.confidence = intent_confidence
    for sensitive, values in ((False, entities), (True, sensitive_entities)):
        for name, value in values.items():
            context.entities.add(name=name, value=value, sensitive=sensitive)
    for speaker, text in transcript:
        context.transcript.add(speaker=speaker_of(speaker), text=text)
    _set_reason(context.reason, reason)
    set_target(request.target, queue=queue, phone_number=phone_number, sip_uri=sip_uri)
    return request


def set_target(into: types_v1.Target, *, queue: str = "", phone_number: str = "", sip_uri: str = "") -> None:
    """Fills `into` with exactly one of `queue`, `phone_number` or `sip_uri`."""
    targets = [t for t in (queue, phone_number, sip_uri) if t]
    if len(targets) != 1:
        raise ValueError("name exactly one target: queue, phone_number or sip_uri")
    if queue:
        into.queue.name = queue
    elif phone_number:
        into.phone_number = phone_number
    else:
        into.sip_uri = sip_uri


def channel_of(channel: str) -> "types_v1.Channel":
    """The Channel of `voice` or `chat`."""
    if channel not in _CHANNELS:
        raise ValueError(f"channel must be one of {sorted(_CHANNELS)}")
    return _CHANNELS[channel]


def speaker_of(speaker: str) -> "types_v1.Speaker":
    """The Speaker of `customer`, `ai` or `human`."""
    if speaker not in _SPEAKERS:
        raise ValueError(f"a turn's speaker must be one of {sorted(_SPEAKERS)}, not {speaker!r}")
    return _SPEAKERS[speaker]


def context_turns(turns: Iterable[Turn]) -> "list[types_v1.Turn]":
    """Transcript turns from (speaker, text) pairs."""
    return [types_v1.Turn(speaker=speaker_of(speaker), text=text) for speaker, text in turns]


def context_entities(entities: Mapping[str, str], sensitive_entities: Mapping[str, str]) -> "list[types_v1.Entity]":
    """Entities from name → value maps, the second marked sensitive."""
    return [
        types_v1.Entity(name=name, value=value, sensitive=sensitive)
        for sensitive, values in ((False, entities), (True, sensitive_entities))
        for name, value in values.items()
    ]


@dataclass(frozen=True)
class Availability:
    """Whether a handoff to a target would reach a human now, by business
    hours (CheckAvailability): ask before promising the customer a human.

    `say` is the phrase for the customer now, in the conversation's
    language: "connecting you" when open, when it opens again when closed.
    `response` is the whole answer (the target and fallback that would
    take it, the agents the connector reports, …)."""

    open: bool
    say: str
    say_language: str
    #: When open: when the target closes (None without business hours).
    closes_at: Optional[datetime]
    #: When closed: the next opening (None when none within a year).
    opens_at: Optional[datetime]
    #: The IANA time zone of the schedule that decided; empty without one.
    time_zone: str
    #: How many targets of the route are closed now.
    closed_targets: int
    response: handoff_v1.CheckAvailabilityResponse

    @staticmethod
    def of(response: handoff_v1.CheckAvailabilityResponse) -> "Availability":
        return Availability(
            open=response.open,
            say=response.customer_message,
            say_language=response.customer_message_language,
            closes_at=_time(response, "closes_at"),
            opens_at=_time(response, "opens_at"),
            time_zone=response.time_zone,
            closed_targets=response.closed_targets,
            response=response,
        )


def _time(response: handoff_v1.CheckAvailabilityResponse, name: str) -> Optional[datetime]:
    if not response.HasField(name):
        return None
    stamp: Timestamp = getattr(response, name)
    return stamp.ToDatetime(tzinfo=timezone.utc)


def judgement(value: Optional[bool]) -> "types_v1.Judgement":
    """A Judgement: True yes, False no, None not answered."""
    if value is None:
        return types_v1.JUDGEMENT_UNSPECIFIED
    return types_v1.JUDGEMENT_YES if value else types_v1.JUDGEMENT_NO


def _set_reason(
    into: types_v1.EscalationReason,
    reason: Union[str, "handoff_v1.EscalationDecision", None],
) -> None:
    if reason is None:
        return
    if isinstance(reason, str):
        into.kind = types_v1.EscalationKind.Value("ESCALATION_KIND_" + reason.upper())  # type: ignore[assignment]
        return
    if reason.fired:
        into.kind = reason.fired[0].kind
        into.detail = reason.fired[0].evidence


def new_request_id() -> str:
    """A fresh idempotency key."""
    return f"py-{uuid.uuid4()}"


def turns_for_evaluation(turns: Sequence[Turn]) -> "list[handoff_v1.EvaluatedTurn]":
    """EvaluatedTurns from (speaker, text) pairs."""
    return [handoff_v1.EvaluatedTurn(speaker=speaker_of(speaker), text=text) for speaker, text in turns]
