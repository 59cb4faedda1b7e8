"""A chat handoff through the Python client against a real `baton dev`:
the runtime's side over ConverseHandoff, the human played through the
embedded queue's agent desktop (its HTTP API, as the page drives it)."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import unittest
import urllib.parse
from typing import AsyncIterator, Dict, Optional, Tuple

from baton_client import (
    AsyncClient,
    ChatEntry,
    Client,
    Conflict,
    FailedPrecondition,
    handoff_request,
    handoff_v1,
)
from baton_dev import BatonDev, CuttableProxy

#: A failure guard for each wait, never a measured time.
WAIT = 30.0


class Desk:
    """One signed-in agent desktop: the session cookie and the CSRF token
    the page holds after signing in (the Rust tests' tests/src/desk.rs)."""

    def __init__(self, base: str, name: str, password: str) -> None:
        parsed = urllib.parse.urlsplit(base)
        self._host, self._port = parsed.hostname or "127.0.0.1", parsed.port or 80
        status, headers, body = self._request("POST", "/api/sessions", {"name": name, "password": password}, {})
        if status != 200:
            raise AssertionError(f"sign-in of {name}: {status} {body!r}")
        self._cookie = headers["set-cookie"].split(";", 1)[0]
        self._csrf = str(json.loads(body)["csrf_token"])

    def _request(
        self, method: str, path: str, body: Optional[object], headers: Dict[str, str]
    ) -> Tuple[int, Dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=WAIT)
        try:
            payload = None if body is None else json.dumps(body).encode()
            if payload is not None:
                headers = {**headers, "content-type": "application/json"}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def change(self, method: str, path: str, body: object) -> int:
        """A change as the page sends it (cookie and CSRF token); its status."""
        status, _, _ = self._request(method, path, body, {"cookie": self._cookie, "x-csrf-token": self._csrf})
        return status

    def available(self) -> None:
        status = self.change("PUT", "/api/agent/state", {"state": "available"})
        if status // 100 != 2:
            raise AssertionError(f"available: {status}")

    def accept(self, handoff_id: str) -> None:
        """Accepts the handoff once it is offered (polled, bounded)."""
        deadline = time.monotonic() + WAIT
        while True:
            status = self.change("POST", f"/api/handoffs/{handoff_id}/accept", {})
            if status // 100 == 2:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the offer of {handoff_id} never came: {status}")
            time.sleep(0.1)
        # The chat pane opens once the contact is the agent's.
        while True:
            status, _, _ = self._request("GET", f"/api/chats/{handoff_id}", None, {"cookie": self._cookie})
            if status == 200:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the chat of {handoff_id} never opened: {status}")
            time.sleep(0.1)

    def write(self, handoff_id: str, message_id: str, text: str) -> None:
        """The human sends a chat message, as the pane does."""
        status = self.change("POST", f"/api/chats/{handoff_id}/messages", {"id": message_id, "text": text})
        if status != 204:
            raise AssertionError(f"chat message: {status}")

    def wrap_up(self, handoff_id: str) -> None:
        """The human completes the contact."""
        status = self.change(
            "POST", f"/api/handoffs/{handoff_id}/wrap-up", {"disposition": "resolved", "notes": "re-sent the parcel"}
        )
        if status // 100 != 2:
            raise AssertionError(f"wrap-up: {status}")


def chat_request() -> handoff_v1.CreateHandoffRequest:
    request = handoff_request(
        queue="support",
        channel="chat",
        summary="Parcel never arrived; wants it re-sent",
        transcript=[("customer", "Where is my parcel?"), ("ai", "Let me check"), ("customer", "I want a person")],
        reason="explicit_request",
    )
    # Time for a conversation.
    request.timeout.FromSeconds(300)
    return request


async def next_entry(entries: AsyncIterator[ChatEntry], what: str) -> ChatEntry:
    try:
        return await asyncio.wait_for(entries.__anext__(), WAIT)
    except asyncio.TimeoutError:
        raise AssertionError(f"no entry within {WAIT} s: {what}") from None


class ChatAgainstBatonDev(unittest.TestCase):
    """Its own `baton dev`: the agent signed in here would take the
    handoffs test_client expects to find nobody for."""

    dev: BatonDev
    desk: Desk

    @classmethod
    def setUpClass(cls) -> None:
        cls.dev = BatonDev()
        try:
            if not (cls.dev.desktop and cls.dev.agent[0]):
                raise AssertionError("the banner names no desktop or agent sign-in")
            cls.desk = Desk(cls.dev.desktop, *cls.dev.agent)
            cls.desk.available()
        except BaseException:
            cls.dev.stop()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.dev.stop()

    def test_chat_with_a_human_across_a_cut_until_the_end(self) -> None:
        proxy = CuttableProxy(self.dev.address)
        try:
            handoff_id, last = asyncio.run(self._converse(proxy))
        finally:
            proxy.close()
        self.assertGreaterEqual(proxy.accepted, 2, "the stream was reopened")

        with Client(self.dev.address, credential=self.dev.api_key) as baton:
            # A runtime that missed the end still gets it (blocking client);
            # one that has read it all cannot reopen the conversation.
            with baton.converse(handoff_id, after_sequence=last - 1) as late:
                entries = list(late)
            self.assertEqual([(e.sequence, e.kind, e.end_reason) for e in entries], [(last, "ENDED", "COMPLETED")])
            self.assertTrue(late.ended)
            with self.assertRaises(FailedPrecondition):
                late.send("are you still there?")
            with self.assertRaises(FailedPrecondition):
                baton.converse(handoff_id, after_sequence=last)

            # The runtime reports the human's judgements (the wrap-up gave none).
            judged = baton.record_outcome(handoff_id, context_sufficient=True, customer_repeated=False)
            self.assertEqual(judged.outcome.source, handoff_v1.OUTCOME_SOURCE_RECORDED)
            again = baton.record_outcome(handoff_id, context_sufficient=True, customer_repeated=False)
            self.assertEqual(again.outcome.record_time, judged.outcome.record_time)
            with self.assertRaises(Conflict):
                baton.record_outcome(handoff_id, context_sufficient=False)

    async def _converse(self, proxy: CuttableProxy) -> Tuple[str, int]:
        """The conversation through `proxy`; the handoff's id and the
        sequence of its ENDED entry."""
        async with AsyncClient(proxy.address, credential=self.dev.api_key, timeout=10) as baton:
            handoff, _ = await baton.create(chat_request())
            chat = await baton.converse(handoff.id)
            assert chat.opened is not None
            self.assertEqual(chat.opened.last_sequence, 0)
            entries = chat.__aiter__()

            # The customer writes while waiting: stored once it comes back
            # with its sequence.
            first_id = await chat.send("my parcel never arrived")
            first = await next_entry(entries, "the first message back")
            self.assertEqual(
                (first.sequence, first.kind, first.author, first.client_message_id, first.text),
                (1, "MESSAGE", "CUSTOMER", first_id, "my parcel never arrived"),
            )

            # The human accepts and answers.
            await asyncio.to_thread(self.desk.accept, handoff.id)
            await asyncio.to_thread(self.desk.write, handoff.id, "a-1", "I see the order; checking the courier")
            answer = await next_entry(entries, "the human's answer")
            self.assertEqual(
                (answer.sequence, answer.author, answer.text, answer.from_human),
                (2, "HUMAN", "I see the order; checking the courier", True),
            )

            # The connection is cut; the human writes meanwhile, and so
            # does the customer: the stream is reopened after sequence 2,
            # the customer's message is sent again (stored once).
            proxy.cut()
            await asyncio.to_thread(self.desk.write, handoff.id, "a-2", "the courier will call you today")
            second_id = await chat.send("it was due on Monday")
            seen = [await next_entry(entries, f"after the cut, entry {n}") for n in (1, 2)]
            by_author = {e.author: e for e in seen}
            self.assertEqual(sorted(e.sequence for e in seen), [3, 4])
            self.assertEqual(by_author["HUMAN"].text, "the courier will call you today")
            self.assertEqual(by_author["CUSTOMER"].client_message_id, second_id)

            # A converse resumed after a cut sequence misses nothing.
            async with await baton.converse(handoff.id, after_sequence=1) as resumed:
                assert resumed.opened is not None
                self.assertEqual(resumed.opened.last_sequence, 4)
                resumed_entries = resumed.__aiter__()
                replayed = [await next_entry(resumed_entries, f"resumed, entry {n}") for n in (1, 2, 3)]
            self.assertEqual([e.sequence for e in replayed], [2, 3, 4])
            self.assertEqual(replayed[0].text, answer.text)

            # The human completes the contact: ENDED, then the iteration ends.
            await asyncio.to_thread(self.desk.wrap_up, handoff.id)
            ended = await next_entry(entries, "ENDED after the wrap-up")
            self.assertEqual((ended.sequence, ended.kind, ended.end_reason), (5, "ENDED", "COMPLETED"))
            self.assertTrue(ended.ended)
            with self.assertRaises(StopAsyncIteration):
                await next_entry(entries, "nothing after ENDED")
            with self.assertRaises(FailedPrecondition):
                await chat.send("hello?")
            # The log has each message once, in order.
            self.assertEqual(chat.last_sequence, 5)
            return handoff.id, ended.sequence


if __name__ == "__main__":
    unittest.main()
