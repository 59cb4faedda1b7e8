"""The integration examples (../examples) against a real `baton dev` (see
baton_dev.py): scripted turns, no LLM, no audio, no LiveKit or Daily server.
Needs livekit-agents and pipecat-ai (examples/requirements.txt); the Rust
wrapper tests/tests/python_examples.rs installs them in a virtualenv."""

from __future__ import annotations

import asyncio
import sys
import time
import unittest
from datetime import datetime, timezone
from pathlib import Path
from typing import Awaitable, Callable, List, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from baton_escalation import FALLBACK_APOLOGY, EscalationGuard, Outcome  # noqa: E402
from livekit.agents import AgentSession, llm  # noqa: E402
from loguru import logger  # noqa: E402
from livekit_agent import BatonAgent, record_ai_turns  # noqa: E402
from pipecat.frames.frames import EndFrame, TranscriptionFrame, TTSSpeakFrame  # noqa: E402
from pipecat.tests.utils import run_test  # noqa: E402
from pipecat_pipeline import BatonEscalationProcessor  # noqa: E402

from baton_client import AsyncClient  # noqa: E402
from baton_dev import BatonDev  # noqa: E402

CONNECTING = "I'm connecting you with a specialist"
CALM = "What are your opening hours?"
ASK_FOR_A_PERSON = "I want to talk to a person"
#: How long a handoff may take to reach a human: the embedded queue refuses
#: (nobody signed in), then the scripted demo contact center answers.
CONNECT_TIMEOUT = 60.0

T = TypeVar("T")

# Pipecat logs every link and frame at DEBUG: keep its warnings only.
logger.remove()
logger.add(sys.stderr, level="WARNING")


def transcription(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, "customer", datetime.now(timezone.utc).isoformat())


class ExamplesAgainstBatonDev(unittest.TestCase):
    dev: BatonDev

    loop: asyncio.AbstractEventLoop

    @classmethod
    def setUpClass(cls) -> None:
        cls.dev = BatonDev()
        # One loop for every test: grpc.aio keeps its poller on the first
        # loop it ran on, and complains when that loop is closed under it.
        cls.loop = asyncio.new_event_loop()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.loop.close()
        cls.dev.stop()

    def with_client(self, test: Callable[[AsyncClient], Awaitable[T]]) -> T:
        async def run() -> T:
            async with AsyncClient(self.dev.address, credential=self.dev.api_key) as client:
                return await asyncio.wait_for(test(client), CONNECT_TIMEOUT + 30)

        try:
            return self.loop.run_until_complete(run())
        except BaseException:
            print(f"baton dev's log:\n{self.dev.log()}", file=sys.stderr)
            raise

    def assert_reached_a_human(self, guard: EscalationGuard) -> None:
        kinds = [u.kind for u in guard.updates]
        self.assertEqual(kinds[0], "CREATED")
        # Nobody is signed in at the desktop: the embedded queue refuses,
        # and the demo contact center takes the customer.
        failed = [u.failure_reason for u in guard.updates if u.kind == "TARGET_FAILED"]
        self.assertEqual(failed, ["NO_AGENTS"], kinds)
        self.assertIn("CONNECTED", kinds)
        self.assertTrue(guard.human_connected)

    def test_guard_escalates_once_with_the_context(self) -> None:
        async def test(client: AsyncClient) -> None:
            guard = EscalationGuard(client, "examples-guard", queue="support")
            try:
                self.assertIsNone(await guard.customer_turn(CALM))
                self.assertIsNone(await guard.ai_turn("We're open from 9 to 5 on weekdays."))
                self.assertFalse(guard.escalated)
                say = await guard.customer_turn(
                    ASK_FOR_A_PERSON,
                    summary="Charged twice for March; wants a person",
                    intent="billing.dispute",
                    intent_confidence=0.9,
                )
                self.assertIsNotNone(say)
                assert say is not None
                self.assertTrue(say.startswith(CONNECTING), say)
                handoff_id = guard.handoff_id
                self.assertTrue(handoff_id)

                # Asked again: no second handoff.
                self.assertIsNone(await guard.customer_turn(ASK_FOR_A_PERSON))
                self.assertEqual(guard.handoff_id, handoff_id)

                outcome = await asyncio.wait_for(guard.outcome(), CONNECT_TIMEOUT)
                self.assertTrue(outcome.connected, outcome)
                self.assertEqual(outcome.handoff_id, handoff_id)
                self.assert_reached_a_human(guard)

                # The request is idempotent: sent again, it is the same handoff.
                assert guard.request is not None
                again, created = await client.create(guard.request)
                self.assertFalse(created)
                self.assertEqual(again.id, handoff_id)

                # The human got the transcript, the summary and the intent.
                handoff = await client.get(handoff_id)
                self.assertEqual(
                    [t.text for t in handoff.context.transcript],
                    [CALM, "We're open from 9 to 5 on weekdays.", ASK_FOR_A_PERSON],
                )
                self.assertEqual(handoff.context.summary, "Charged twice for March; wants a person")
                self.assertEqual(handoff.context.intent.name, "billing.dispute")
                self.assertNotEqual(handoff.context.reason.kind, 0)
            finally:
                await guard.close()

        self.with_client(test)

    def test_guard_apologises_when_the_handoff_cannot_be_created(self) -> None:
        async def test(client: AsyncClient) -> None:
            outcomes: List[Outcome] = []

            async def record(outcome: Outcome) -> None:
                outcomes.append(outcome)

            # The control service refuses the queue's name (InvalidArgument).
            guard = EscalationGuard(client, "examples-refused", queue="no such queue", channel="chat", on_outcome=record)
            say = await guard.customer_turn(ASK_FOR_A_PERSON)
            self.assertEqual(say, FALLBACK_APOLOGY)
            outcome = await guard.outcome()
            self.assertFalse(outcome.connected)
            self.assertEqual(outcomes, [outcome])
            self.assertFalse(guard.human_connected)
            await guard.close()

        self.with_client(test)

    def test_pipecat_processor_speaks_batons_phrase(self) -> None:
        async def test(client: AsyncClient) -> None:
            guard = EscalationGuard(client, "examples-pipecat", queue="support")
            processor = BatonEscalationProcessor(guard)
            try:
                # No EndFrame from the test: the processor ends the pipeline
                # itself (EndWorkerFrame) once a human has the customer.
                down, _ = await run_test(
                    processor,
                    frames_to_send=[transcription(CALM), transcription(ASK_FOR_A_PERSON)],
                    send_end_frame=False,
                    start_timeout=10.0,
                )
            finally:
                await guard.close()
            data = [f for f in down if not isinstance(f, EndFrame)]
            # The calm question goes on to the LLM; the request for a person
            # is replaced by Baton's phrase.
            self.assertEqual([type(f) for f in data], [TranscriptionFrame, TTSSpeakFrame], down)
            calm, spoken = data
            assert isinstance(calm, TranscriptionFrame) and isinstance(spoken, TTSSpeakFrame)
            self.assertEqual(calm.text, CALM)
            self.assertTrue(spoken.text.startswith(CONNECTING), spoken.text)
            self.assert_reached_a_human(guard)

        self.with_client(test)

    def test_livekit_agent_says_batons_phrase_and_then_goes_quiet(self) -> None:
        def message(text: str) -> llm.ChatMessage:
            return llm.ChatMessage(role="user", content=[text])

        async def test(client: AsyncClient) -> None:
            guard = EscalationGuard(client, "examples-livekit", queue="support")
            # A real AgentSession, started without a room, STT, LLM or TTS:
            # `say` then only writes the session's history.
            session: AgentSession[None] = AgentSession()
            async with session:
                agent = BatonAgent(guard)
                await session.start(agent)
                record_ai_turns(session, guard)
                try:
                    # A plain question: returns, the LLM would answer it.
                    await agent.on_user_turn_completed(llm.ChatContext(), message(CALM))
                    with self.assertRaises(llm.StopResponse):
                        await agent.on_user_turn_completed(llm.ChatContext(), message(ASK_FOR_A_PERSON))
                    outcome = await asyncio.wait_for(guard.outcome(), CONNECT_TIMEOUT)
                    self.assertTrue(outcome.connected, outcome)
                    self.assert_reached_a_human(guard)
                    # The human has the customer: the AI answers nothing more.
                    with self.assertRaises(llm.StopResponse):
                        await agent.on_user_turn_completed(llm.ChatContext(), message("Hello?"))

                    said = await self.eventually(lambda: assistant_messages(session))
                    self.assertEqual(len(said), 1, said)
                    self.assertTrue(said[0].startswith(CONNECTING), said)
                    # What the AI said went into the guard's transcript too.
                    await self.eventually(lambda: [t for t in guard.transcript if t == ("ai", said[0])])
                finally:
                    await guard.close()

        self.with_client(test)

    async def eventually(self, probe: Callable[[], List[T]], timeout: float = 10.0) -> List[T]:
        deadline = time.monotonic() + timeout
        while not (found := probe()):
            if time.monotonic() > deadline:
                self.fail("timed out waiting")
            await asyncio.sleep(0.05)
        return found


def assistant_messages(session: AgentSession[None]) -> List[str]:
    return [
        item.text_content or ""
        for item in session.history.items
        if isinstance(item, llm.ChatMessage) and item.role == "assistant"
    ]


if __name__ == "__main__":
    unittest.main()
