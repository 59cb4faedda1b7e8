"""What a runtime follows: one typed update per handoff event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence, Tuple, Union

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
    if channel not in _CHANNELS:
        raise ValueError(f"channel must be one of {sorted(_CHANNELS)}")
    request = handoff_v1.CreateHandoffRequest(request_id=request_id or new_request_id())
    request.conversation.channel = _CHANNELS[channel]
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
        if speaker not in _SPEAKERS:
            raise ValueError(f"a turn's speaker must be one of {sorted(_SPEAKERS)}, not {speaker!r}")
        context.transcript.add(speaker=_SPEAKERS[speaker], text=text)
    _set_reason(context.reason, reason)
    if queue:
        request.target.queue.name = queue
    elif phone_number:
        request.target.phone_number = phone_number
    else:
        request.target.sip_uri = sip_uri
    return request


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
    evaluated = []
    for speaker, text in turns:
        if speaker not in _SPEAKERS:
            raise ValueError(f"a turn's speaker must be one of {sorted(_SPEAKERS)}, not {speaker!r}")
        evaluated.append(handoff_v1.EvaluatedTurn(speaker=_SPEAKERS[speaker], text=text))
    return evaluated
