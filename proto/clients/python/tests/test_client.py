"""The Python client against a real `baton dev` (see baton_dev.py)."""

from __future__ import annotations

import asyncio
import unittest
from typing import List

import grpc

from baton_client import (
    AsyncClient,
    Client,
    FailedPrecondition,
    HandoffUpdate,
    InvalidArgument,
    StaleContext,
    Unauthenticated,
    handoff_request,
    handoff_v1,
    types_v1,
)
from baton_client.errors import BatonError
from baton_dev import BatonDev, CuttableProxy

# The chat tests (their own `baton dev`, with an agent signed in), run with
# these: `python -m unittest test_client` is what tests/tests/python_client.rs runs.
from test_chat import ChatAgainstBatonDev  # noqa: F401,E402

CONNECTING = "I'm connecting you with a specialist"


def billing_request(request_id: str = "") -> handoff_v1.CreateHandoffRequest:
    return handoff_request(
        queue="support",
        summary="Charged twice for the March invoice; wants a refund",
        intent="billing.dispute",
        intent_confidence=0.92,
        entities={"issue_type": "double charge"},
        sensitive_entities={"account_number": "12345678"},
        transcript=[("customer", "I was charged twice"), ("ai", "Let me check"), ("customer", "I want a person")],
        reason="explicit_request",
        request_id=request_id,
    )


class AgainstBatonDev(unittest.TestCase):
    dev: BatonDev

    @classmethod
    def setUpClass(cls) -> None:
        cls.dev = BatonDev()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.dev.stop()

    def client(self, target: str = "", credential: str = "") -> Client:
        return Client(target or self.dev.address, credential=credential or self.dev.api_key, timeout=10)

    def assert_followed_to_the_end(self, updates: List[HandoffUpdate]) -> None:
        """The whole story of a handoff to `support` while nobody is signed
        in to the embedded queue, each event once and in order."""
        self.assertEqual([u.sequence for u in updates], list(range(1, len(updates) + 1)))
        kinds = [u.kind for u in updates]
        self.assertEqual(kinds[0], "CREATED")
        self.assertTrue(updates[0].say.startswith(CONNECTING), updates[0].say)
        self.assertEqual(updates[0].say_language, "en")
        self.assertTrue(all(not u.say for u in updates[1:]))
        failed = [u for u in updates if u.kind == "TARGET_FAILED"]
        self.assertEqual([u.failure_reason for u in failed], ["NO_AGENTS"])
        queued = [u for u in updates if u.kind == "QUEUED"]
        self.assertTrue(queued and all(u.queue_position for u in queued), kinds)
        self.assertIsNotNone(queued[0].estimated_wait_seconds)
        self.assertIn("CONNECTED", kinds)
        self.assertEqual(updates[-1].kind, "COMPLETED")
        self.assertTrue(updates[-1].terminal)
        self.assertFalse(any(u.terminal for u in updates[:-1]))

    def test_evaluate_honours_an_explicit_request(self) -> None:
        with self.client() as baton:
            decision = baton.evaluate("py-evaluate", [("customer", "I want to talk to a person")], language="en")
        self.assertTrue(decision.escalate)
        self.assertEqual(decision.fired[0].kind, types_v1.ESCALATION_KIND_EXPLICIT_REQUEST)
        self.assertTrue(decision.customer_message)

    def test_evaluate_does_not_escalate_a_plain_question(self) -> None:
        with self.client() as baton:
            decision = baton.evaluate("py-calm", [("customer", "What are your opening hours?")], language="en")
        self.assertFalse(decision.escalate)

    def test_handoff_is_followed_to_its_end(self) -> None:
        with self.client() as baton:
            updates = list(baton.handoff(billing_request()))
            self.assert_followed_to_the_end(updates)
            # Too late to cancel: a typed refusal that says why.
            with self.assertRaises(FailedPrecondition) as refused:
                baton.cancel(updates[0].handoff_id)
            self.assertEqual(refused.exception.reason, "HANDOFF_ENDED")

    def test_async_handoff_is_followed_to_its_end(self) -> None:
        async def run() -> List[HandoffUpdate]:
            async with AsyncClient(self.dev.address, credential=self.dev.api_key) as baton:
                return [update async for update in baton.handoff(billing_request())]

        self.assert_followed_to_the_end(asyncio.run(run()))

    def test_watch_resumes_after_the_stream_breaks(self) -> None:
        proxy = CuttableProxy(self.dev.address)
        try:
            with self.client(target=proxy.address) as baton:
                updates = []
                for update in baton.handoff(billing_request()):
                    updates.append(update)
                    if update.kind in ("TARGET_FAILED", "OFFERED"):
                        proxy.cut()
            # Cut twice, reconnected each time: nothing missed, nothing twice.
            self.assert_followed_to_the_end(updates)
            self.assertGreaterEqual(proxy.accepted, 3)
        finally:
            proxy.close()

    def test_create_is_idempotent(self) -> None:
        with self.client() as baton:
            request = billing_request()
            request.request_id = ""
            first, created = baton.create(request)
            self.assertTrue(created)
            self.assertTrue(request.request_id.startswith("py-"), "the client made the request id")
            again, created_again = baton.create(request)
            self.assertFalse(created_again)
            self.assertEqual(again.id, first.id)
            baton.cancel(first.id, "test over")

    def test_cancel_ends_the_handoff_and_the_watch(self) -> None:
        with self.client() as baton:
            handoff, _ = baton.create(billing_request())
            cancelled = baton.cancel(handoff.id, "the customer hung up")
            self.assertEqual(cancelled.state, handoff_v1.HANDOFF_STATE_CANCELLED)
            # Cancelling is idempotent: a retried cancel answers the same.
            self.assertEqual(baton.cancel(handoff.id).state, handoff_v1.HANDOFF_STATE_CANCELLED)
            updates = list(baton.watch(handoff.id))
            self.assertEqual(updates[-1].kind, "CANCELLED")
            self.assertEqual(updates[-1].failure_reason, "CANCELLED")
            # After the end, the watch from the last event ends at once.
            self.assertEqual(list(baton.watch(handoff.id, after_sequence=updates[-1].sequence)), [])

    def test_availability_of_the_support_queue(self) -> None:
        with self.client() as baton:
            availability = baton.check_availability(queue="support", language="en")
            self.assertTrue(availability.open)
            self.assertTrue(availability.say.startswith(CONNECTING), availability.say)
            self.assertEqual(availability.say_language, "en")
            self.assertEqual(availability.response.target.target.queue.name, "support")
            # No business hours in `baton dev`: open with no closing time.
            self.assertIsNone(availability.closes_at)
            self.assertIsNone(availability.opens_at)
            with self.assertRaises(ValueError):
                baton.check_availability()

    def test_update_adds_to_the_context_while_the_customer_waits(self) -> None:
        with self.client() as baton:
            handoff, _ = baton.create(billing_request())
            try:
                # Nobody is signed in to the embedded queue: the handoff
                # waits (PENDING, ROUTING, then QUEUED there) for seconds.
                waiting = (handoff_v1.HANDOFF_STATE_PENDING, handoff_v1.HANDOFF_STATE_ROUTING, handoff_v1.HANDOFF_STATE_QUEUED)
                self.assertIn(handoff.state, waiting)
                version = handoff.context_version
                def send_update() -> handoff_v1.UpdateHandoffResponse:
                    return baton.update(
                        handoff.id,
                        context_version=version,
                        turns=[("customer", "It was the card ending 4242")],
                        entities={"card_last4": "4242"},
                        notes="asked twice about the refund",
                        request_id="py-update-1",
                    )

                updated = send_update()
                self.assertTrue(updated.applied)
                self.assertIn(updated.handoff.state, waiting)
                self.assertEqual(updated.context_version, version + 1)
                context = updated.handoff.context
                self.assertEqual(context.transcript[-1].text, "It was the card ending 4242")
                self.assertEqual(context.transcript[-1].speaker, types_v1.SPEAKER_CUSTOMER)
                self.assertIn("card_last4", [e.name for e in context.entities])
                # The same request id again: applied once, answered again.
                again = send_update()
                self.assertFalse(again.applied)
                self.assertEqual(again.context_version, version + 1)
                self.assertEqual(len(again.handoff.context.transcript), len(context.transcript))
                # A stale version is refused, naming the current one.
                with self.assertRaises(StaleContext) as refused:
                    baton.update(handoff.id, context_version=version, turns=[("customer", "hello?")])
                self.assertEqual(refused.exception.reason, "CONTEXT_VERSION_CONFLICT")
                self.assertEqual(refused.exception.current_version, version + 1)
                self.assertFalse(refused.exception.retryable)
                # Resent against the current version, it applies.
                resent = baton.update(
                    handoff.id, context_version=refused.exception.current_version or 0, turns=[("customer", "hello?")]
                )
                self.assertEqual(resent.context_version, version + 2)
                # The watch shows each update as CONTEXT_UPDATED.
                kinds = []
                for update in baton.watch(handoff.id):
                    kinds.append(update.kind)
                    if kinds.count("CONTEXT_UPDATED") == 2:
                        break
                self.assertEqual(kinds.count("CONTEXT_UPDATED"), 2, kinds)
            finally:
                baton.cancel(handoff.id, "test over")
            # Once ended, the context is closed.
            with self.assertRaises(FailedPrecondition):
                baton.update(handoff.id, context_version=version + 2, notes="too late")

    def test_async_update_and_availability(self) -> None:
        async def run() -> None:
            async with AsyncClient(self.dev.address, credential=self.dev.api_key) as baton:
                availability = await baton.check_availability(queue="support", channel="chat")
                self.assertTrue(availability.open)
                handoff, _ = await baton.create(billing_request())
                try:
                    updated = await baton.update(handoff.id, context_version=handoff.context_version, notes="VIP")
                    self.assertTrue(updated.applied)
                    self.assertIn("VIP", updated.handoff.context.agent_notes)
                finally:
                    await baton.cancel(handoff.id)

        asyncio.run(run())

    def test_a_bad_field_is_named(self) -> None:
        request = handoff_request(phone_number="555-0100", summary="Wants a refund")
        with self.client() as baton, self.assertRaises(InvalidArgument) as refused:
            baton.create(request)
        self.assertEqual(refused.exception.reason, "INVALID_ARGUMENT")
        self.assertEqual(refused.exception.field, "target.phone_number")
        self.assertFalse(refused.exception.retryable)

    def test_a_wrong_credential_is_refused(self) -> None:
        with self.client(credential="bk_0000000000000000_wrong") as baton, self.assertRaises(Unauthenticated) as refused:
            baton.get("does-not-matter")
        self.assertEqual(refused.exception.reason, "CREDENTIAL_INVALID")
        self.assertNotIn("bk_0000000000000000_wrong", str(refused.exception))
        self.assertNotIn("bk_0000000000000000_wrong", repr(baton.settings))


class WithoutServer(unittest.TestCase):
    def test_unreachable_service_is_unavailable_after_the_retries(self) -> None:
        with Client("127.0.0.1:1", credential="bk_x", timeout=1, retries=1) as baton:
            with self.assertRaises(BatonError) as refused:
                baton.get("x")
        self.assertEqual(refused.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertTrue(refused.exception.retryable)

    def test_request_builder_refuses_what_it_cannot_send(self) -> None:
        with self.assertRaises(ValueError):
            handoff_request(summary="x")
        with self.assertRaises(ValueError):
            handoff_request(summary="x", queue="a", sip_uri="sip:b@example.com")
        with self.assertRaises(ValueError):
            handoff_request(summary="x", queue="a", transcript=[("robot", "hi")])


if __name__ == "__main__":
    unittest.main()
