"""Baton's Python client: hand a live customer from an AI agent to a human,
with the context, and follow the handoff until a human has them.

    from baton_client import Client, handoff_request

    with Client("127.0.0.1:50051", credential=os.environ["BATON_API_KEY"]) as baton:
        decision = baton.evaluate("call-42", [("customer", "I want to talk to a person")])
        if decision.escalate:
            request = handoff_request(queue="support", summary="Charged twice for March", reason=decision)
            for update in baton.handoff(request):
                if update.say:
                    speak(update.say)

The generated messages are in `baton_client.handoff_v1` and
`baton_client.types_v1`.
"""

from ._channel import Tls
from ._proto.baton.handoff.v1 import handoff_pb2 as handoff_v1
from ._proto.baton.type.v1 import handoff_context_pb2 as types_v1
from .aio import AsyncClient
from .chat import AsyncConversation, ChatEntry
from .client import Client, Conversation
from .errors import (
    BatonError,
    Conflict,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    StaleContext,
    Unauthenticated,
    Unavailable,
)
from .updates import TERMINAL_STATES, Availability, HandoffUpdate, Turn, handoff_request, new_request_id

__all__ = [
    "AsyncClient",
    "AsyncConversation",
    "Availability",
    "BatonError",
    "ChatEntry",
    "Client",
    "Conflict",
    "Conversation",
    "FailedPrecondition",
    "FieldViolation",
    "HandoffUpdate",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "StaleContext",
    "TERMINAL_STATES",
    "Tls",
    "Turn",
    "Unauthenticated",
    "Unavailable",
    "handoff_request",
    "handoff_v1",
    "new_request_id",
    "types_v1",
]
