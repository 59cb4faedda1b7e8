"""The asyncio client: the same calls as `Client`, awaited."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable, Mapping, Optional, Sequence, Tuple, TypeVar

import grpc
import grpc.aio

from ._channel import Settings, Tls, backoff
from ._proto.baton.handoff.v1 import handoff_pb2 as handoff_v1
from ._proto.baton.handoff.v1 import handoff_pb2_grpc as handoff_grpc
from .chat import AsyncConversation
from .errors import BatonError, Unavailable
from .updates import (
    Availability,
    HandoffUpdate,
    Turn,
    channel_of,
    context_entities,
    context_turns,
    judgement,
    new_request_id,
    set_target,
    turns_for_evaluation,
    watch_is_over,
)

T = TypeVar("T")


class AsyncClient:
    """Baton's handoff API for asyncio runtimes (LiveKit Agents, Pipecat).
    Use it as an async context manager or await `close()`.

    >>> async with AsyncClient("127.0.0.1:50051", credential=key) as client:
    ...     async for update in client.handoff(handoff_request(queue="support", summary="…")):
    ...         if update.say: await session.say(update.say)
    """

    def __init__(
        self,
        target: str,
        *,
        credential: Optional[str] = None,
        tls: Optional[Tls] = None,
        timeout: float = 10.0,
        retries: int = 5,
        options: Sequence[Tuple[str, object]] = (),
    ) -> None:
        self.settings = Settings(target, credential, tls, timeout, retries, options)
        if tls is None:
            self._channel = grpc.aio.insecure_channel(target, options=list(options))
        else:
            self._channel = grpc.aio.secure_channel(target, tls.credentials(), options=list(options))
        # The generated stub is untyped; each call below names its response type.
        self._stub = handoff_grpc.HandoffServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(grace=None)

    async def evaluate(
        self,
        conversation_id: str,
        turns: Sequence[Turn],
        *,
        language: str = "",
        whole_conversation: bool = False,
    ) -> handoff_v1.EscalationDecision:
        """Whether to hand the conversation to a human now, and why: the
        escalation policy over the new `turns` ((speaker, text) pairs) of
        `conversation_id`. The policy keeps the conversation's state between
        calls (repeated AI failures count); `whole_conversation` says `turns`
        is everything so far. Not retried after a transient failure (the
        first call may have counted the turns); a rate limit's refusal is."""
        request = handoff_v1.EvaluateEscalationRequest(
            conversation_id=conversation_id,
            whole_conversation=whole_conversation,
            language=language,
            turns=turns_for_evaluation(turns),
        )
        response: handoff_v1.EvaluateEscalationResponse = await self._call(
            lambda: self._stub.EvaluateEscalation(request, **self._options()), idempotent=False
        )
        return response.decision

    async def create(self, request: handoff_v1.CreateHandoffRequest) -> Tuple[handoff_v1.Handoff, bool]:
        """Creates the handoff, or returns the one this `request_id` already
        created (`False`). An empty `request_id` is filled in first, so the
        retries after a transient failure can never create two."""
        if not request.request_id:
            request.request_id = new_request_id()
        response: handoff_v1.CreateHandoffResponse = await self._call(lambda: self._stub.CreateHandoff(request, **self._options()))
        return response.handoff, response.created

    async def get(self, handoff_id: str) -> handoff_v1.Handoff:
        request = handoff_v1.GetHandoffRequest(handoff_id=handoff_id)
        response: handoff_v1.GetHandoffResponse = await self._call(
            lambda: self._stub.GetHandoff(request, **self._options())
        )
        return response.handoff

    async def cancel(self, handoff_id: str, reason: str = "") -> handoff_v1.Handoff:
        """Cancels a handoff no human has yet; cancelling a cancelled one
        answers it again. FailedPrecondition (`HANDOFF_ENDED`,
        `CALLBACK_DIALING`) once it is too late."""
        request = handoff_v1.CancelHandoffRequest(handoff_id=handoff_id, reason=reason)
        response: handoff_v1.CancelHandoffResponse = await self._call(
            lambda: self._stub.CancelHandoff(request, **self._options())
        )
        return response.handoff

    async def check_availability(
        self,
        *,
        queue: str = "",
        phone_number: str = "",
        sip_uri: str = "",
        language: str = "en",
        intent: str = "",
        channel: str = "voice",
    ) -> Availability:
        """Whether a handoff to this target (exactly one of `queue`,
        `phone_number`, `sip_uri`) would reach a human now, by business
        hours: call it before promising the customer a human, and say
        `say` (open: "connecting you"; closed: when it opens again).
        Nothing is created; an open target may still have nobody free."""
        request = handoff_v1.CheckAvailabilityRequest(language=language, intent=intent, channel=channel_of(channel))
        set_target(request.target, queue=queue, phone_number=phone_number, sip_uri=sip_uri)
        response: handoff_v1.CheckAvailabilityResponse = await self._call(
            lambda: self._stub.CheckAvailability(request, **self._options())
        )
        return Availability.of(response)

    async def update(
        self,
        handoff_id: str,
        *,
        context_version: int,
        turns: Sequence[Turn] = (),
        entities: Mapping[str, str] = {},
        sensitive_entities: Mapping[str, str] = {},
        notes: str = "",
        request_id: str = "",
    ) -> handoff_v1.UpdateHandoffResponse:
        """Adds to the context of a handoff no human has yet (routing,
        queued, ringing), while the customer waits: new `turns` ((speaker,
        text) pairs), `entities` (one named like an existing entity
        corrects it), `notes`. `context_version` is the handoff's
        `context_version` as last read (from `get()`, `create()` or the
        previous update's response); when the context has moved on, the
        call raises StaleContext with `current_version`: read again and
        resend. An empty `request_id` is made before the first try, so a
        transient failure is retried without applying the update twice.
        Once a human has the customer or the handoff ended:
        FailedPrecondition."""
        request = handoff_v1.UpdateHandoffRequest(
            handoff_id=handoff_id,
            request_id=request_id or new_request_id(),
            expected_context_version=context_version,
            turns=context_turns(turns),
            entities=context_entities(entities, sensitive_entities),
            notes=notes,
        )
        response: handoff_v1.UpdateHandoffResponse = await self._call(
            lambda: self._stub.UpdateHandoff(request, **self._options())
        )
        return response

    async def converse(self, handoff_id: str, after_sequence: int = 0) -> AsyncConversation:
        """Opens the conversation of a chat handoff (created with the chat
        channel), after chat sequence `after_sequence` (0: from the start;
        a runtime that lost its stream passes the last sequence it saw):
        `send()` the customer's messages and iterate the entries, the
        human's replies among them, until the ENDED entry. Call it once the
        handoff is created. FailedPrecondition when the handoff is not a
        chat, or ended with nothing left to read.

        >>> async with await client.converse(handoff.id) as chat:
        ...     await chat.send("Are you there?")
        ...     async for entry in chat:
        ...         if entry.from_human: await reply_to_customer(entry.text)
        """
        conversation = AsyncConversation(self._stub, self.settings, handoff_id, after_sequence)
        await conversation.open()
        return conversation

    async def record_outcome(
        self,
        handoff_id: str,
        *,
        context_sufficient: Optional[bool] = None,
        customer_repeated: Optional[bool] = None,
        escalation_needed: Optional[bool] = None,
    ) -> handoff_v1.Handoff:
        """Records how a handoff went, as the human judged it, when Baton
        cannot ask them at wrap-up (a phone number, a SIP phone): call it
        after the handoff COMPLETED or was HANDED_BACK, with at least one
        judgement (None: not answered). The same judgements again answer
        the stored outcome; different ones are Conflict."""
        request = handoff_v1.RecordOutcomeRequest(
            handoff_id=handoff_id,
            context_sufficient=judgement(context_sufficient),
            customer_repeated=judgement(customer_repeated),
            escalation_needed=judgement(escalation_needed),
        )
        response: handoff_v1.RecordOutcomeResponse = await self._call(
            lambda: self._stub.RecordOutcome(request, **self._options())
        )
        return response.handoff

    def watch(self, handoff_id: str, after_sequence: int = 0) -> AsyncIterator[HandoffUpdate]:
        """The handoff's events after `after_sequence`, until it ends. A
        broken stream is reopened after the last event seen: nothing is
        missed or repeated."""
        return self._watch(handoff_id, after_sequence, None)

    async def handoff(self, request: handoff_v1.CreateHandoffRequest) -> AsyncIterator[HandoffUpdate]:
        """Creates the handoff (idempotently) and follows it to its end.
        The first update (CREATED) carries `say`, the phrase for the
        customer."""
        handoff, _ = await self.create(request)
        async for update in self._watch(handoff.id, 0, handoff):
            yield update

    async def _watch(
        self, handoff_id: str, after: int, created: Optional[handoff_v1.Handoff]
    ) -> AsyncIterator[HandoffUpdate]:
        failures = 0
        while True:
            request = handoff_v1.WatchHandoffRequest(handoff_id=handoff_id, after_sequence=after)
            error: Optional[BatonError] = None
            try:
                async for response in self._stub.WatchHandoff(request, metadata=self.settings.metadata):
                    if response.event.sequence <= after:
                        continue
                    after, failures = response.event.sequence, 0
                    update = HandoffUpdate.of(response.event, created)
                    yield update
                    if update.terminal:
                        return
            except grpc.RpcError as rpc_error:
                error = BatonError.from_rpc(rpc_error)
                if not error.retryable:
                    raise error from None
            if error is None and watch_is_over(await self.get(handoff_id), after):
                # The stream ended cleanly after the last event: the
                # handoff had already ended when the watch began.
                return
            failures += 1
            if failures > self.settings.retries:
                raise error or Unavailable(grpc.StatusCode.UNAVAILABLE, "the watch kept ending early")
            await asyncio.sleep(backoff(failures, error.retry_after if error else None))

    def _options(self) -> "dict[str, object]":
        return {"metadata": self.settings.metadata, "timeout": self.settings.timeout}

    async def _call(self, call: Callable[[], Awaitable[T]], idempotent: bool = True) -> T:
        attempt = 0
        while True:
            try:
                return await call()
            except grpc.RpcError as rpc_error:
                error = BatonError.from_rpc(rpc_error)
                attempt += 1
                if not error.may_retry(idempotent) or attempt > self.settings.retries:
                    raise error from None
                await asyncio.sleep(backoff(attempt, error.retry_after))
