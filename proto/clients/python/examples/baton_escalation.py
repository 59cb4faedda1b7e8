"""Baton in a voice/chat agent's turn loop, for any asyncio runtime.

`EscalationGuard` is the whole integration: feed it every turn; when Baton's
escalation policy says a human should take over, it creates the handoff
(once), gives back the phrase the AI says now, follows the handoff, and
tells the runtime when a human has the customer (the AI must go quiet) or
when the handoff failed (the AI apologises and carries on). The LiveKit and
Pipecat examples beside this file are thin adapters over it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, List, Mapping, Optional

from baton_client import AsyncClient, BatonError, HandoffUpdate, Turn, handoff_request, handoff_v1, new_request_id

log = logging.getLogger("baton.escalation")

#: Said when the handoff could not reach a human: the customer must never be
#: left in silence, and the AI keeps the conversation.
FALLBACK_APOLOGY = (
    "I'm sorry, I couldn't reach a specialist right now. "
    "I'll keep helping you, and you can ask for a person again at any time."
)


@dataclass(frozen=True)
class Outcome:
    """How the handoff ended for the AI: a human has the customer
    (`connected`), or not (`say` is the apology to speak)."""

    handoff_id: str
    connected: bool
    failure_reason: str = ""
    say: str = ""


OnOutcome = Callable[[Outcome], Awaitable[None]]


class EscalationGuard:
    """One conversation's escalation: one guard per call or chat.

    `queue` is where humans take the customer (`handoff_request(queue=…)`);
    `on_outcome`, when given, is awaited once with the handoff's outcome.
    """

    def __init__(
        self,
        client: AsyncClient,
        conversation_id: str,
        *,
        queue: str,
        language: str = "en",
        channel: str = "voice",
        on_outcome: Optional[OnOutcome] = None,
    ) -> None:
        self.client = client
        self.conversation_id = conversation_id
        self.queue = queue
        self.language = language
        self.channel = channel
        self.on_outcome = on_outcome
        self.transcript: List[Turn] = []
        #: The request sent, once escalated; its request_id is the
        #: idempotency key, so a retried create can never transfer twice.
        self.request: Optional[handoff_v1.CreateHandoffRequest] = None
        self.handoff_id = ""
        self.updates: List[HandoffUpdate] = []
        self._outcome: "asyncio.Future[Outcome]" = asyncio.get_running_loop().create_future()
        self._follower: Optional["asyncio.Task[None]"] = None

    @property
    def escalated(self) -> bool:
        return self.request is not None

    @property
    def human_connected(self) -> bool:
        """A human has the customer: the AI must not answer any more."""
        return self._outcome.done() and self._outcome.result().connected

    async def customer_turn(
        self,
        text: str,
        *,
        summary: str = "",
        intent: str = "",
        intent_confidence: float = 0.0,
        entities: Mapping[str, str] = {},
    ) -> Optional[str]:
        """Records the customer's turn and evaluates it. Returns what the AI
        must say instead of answering when this turn starts the handoff
        (Baton's "I'm connecting you with a specialist…", or the apology when
        the handoff could not be created); None when the AI answers as usual.
        `summary`, `intent` and `entities` are the runtime's own reading of the
        conversation, handed to the human with the transcript."""
        return await self._turn("customer", text, summary, intent, intent_confidence, entities)

    async def ai_turn(self, text: str) -> Optional[str]:
        """Records what the AI said. It is evaluated too: the policy counts
        the AI's repeated failures ("I don't know…") as a reason to escalate."""
        return await self._turn("ai", text, "", "", 0.0, {})

    async def outcome(self) -> Outcome:
        """Waits for a human, or for the handoff to fail (bound it with
        `asyncio.wait_for`)."""
        return await asyncio.shield(self._outcome)

    async def close(self) -> None:
        """Stops following the handoff (the conversation is over). The
        handoff itself goes on: the customer is still on their way to a human."""
        if self._follower is not None and not self._follower.done():
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)

    async def _turn(
        self,
        speaker: str,
        text: str,
        summary: str,
        intent: str,
        intent_confidence: float,
        entities: Mapping[str, str],
    ) -> Optional[str]:
        if not text.strip():
            return None
        self.transcript.append((speaker, text))
        if self.escalated:
            # Already on the way to a human: never a second handoff.
            return None
        try:
            decision = await self.client.evaluate(self.conversation_id, [(speaker, text)], language=self.language)
        except BatonError as error:
            # Baton unreachable must not silence the AI: it keeps talking.
            log.warning("escalation not evaluated: %s", error)
            return None
        if not decision.escalate:
            return None
        self.request = handoff_request(
            queue=self.queue,
            channel=self.channel,
            language=self.language,
            summary=summary or _default_summary(self.transcript),
            intent=intent,
            intent_confidence=intent_confidence,
            entities=entities,
            transcript=self.transcript,
            reason=decision,
            request_id=new_request_id(),
        )
        updates = self.client.handoff(self.request).__aiter__()
        try:
            first = await updates.__anext__()
        except (BatonError, StopAsyncIteration) as error:
            log.warning("handoff not created: %s", error)
            await self._finish(Outcome(handoff_id="", connected=False, failure_reason=str(error), say=FALLBACK_APOLOGY))
            return FALLBACK_APOLOGY
        self.handoff_id = first.handoff_id
        self.updates.append(first)
        # Follow the rest in the background: the AI speaks the phrase now,
        # while the handoff is routed.
        self._follower = asyncio.create_task(self._follow(updates))
        return first.say or decision.customer_message

    async def _follow(self, updates: AsyncIterator[HandoffUpdate]) -> None:
        failure = ""
        try:
            async for update in updates:
                self.updates.append(update)
                log.info("handoff %s: %s (%s)", update.handoff_id, update.kind, update.state)
                if update.connected:
                    await self._finish(Outcome(self.handoff_id, connected=True))
                failure = update.failure_reason or failure
        except BatonError as error:
            failure = f"lost the handoff's updates: {error}"
        # Ended without a human (failed, cancelled, handed back): the AI has
        # the customer again and says so.
        await self._finish(Outcome(self.handoff_id, connected=False, failure_reason=failure or "ENDED", say=FALLBACK_APOLOGY))

    async def _finish(self, outcome: Outcome) -> None:
        if self._outcome.done():
            return
        self._outcome.set_result(outcome)
        if self.on_outcome is not None:
            try:
                await self.on_outcome(outcome)
            except Exception:
                # The runtime's reaction failed (its session already closed,
                # say); the outcome stands, the follower must not die of it.
                log.exception("on_outcome failed for %s", outcome)


def _default_summary(transcript: List[Turn]) -> str:
    # The summary is required; a runtime with an LLM should pass a real one.
    last = next((text for speaker, text in reversed(transcript) if speaker == "customer"), "")
    return f"Escalated by the AI agent; the customer last said: {last}"[:500]
