"""The blocking client: `AsyncClient`'s calls, run on a private event loop
so that both behave the same (one implementation of retries and resume)."""

from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator, Coroutine, Iterator, Mapping, Optional, Sequence, Tuple, TypeVar

from ._channel import Settings, Tls
from ._proto.baton.handoff.v1 import handoff_pb2 as handoff_v1
from .aio import AsyncClient
from .chat import AsyncConversation, ChatEntry
from .updates import Availability, HandoffUpdate, Turn

T = TypeVar("T")
U = TypeVar("U")


class Client:
    """Baton's handoff API, blocking. Use it as a context manager or call
    `close()`. Each call is `AsyncClient`'s, documented there.

    >>> client = Client("127.0.0.1:50051", credential=os.environ["BATON_API_KEY"])
    >>> for update in client.handoff(handoff_request(queue="support", summary="…")):
    ...     if update.say: speak(update.say)
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
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="baton-client", daemon=True)
        self._thread.start()

        async def connect() -> AsyncClient:
            # A grpc.aio channel belongs to the loop it was made on.
            return AsyncClient(target, credential=credential, tls=tls, timeout=timeout, retries=retries, options=options)

        self._client = self._run(connect())
        self.settings: Settings = self._client.settings

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def evaluate(
        self,
        conversation_id: str,
        turns: Sequence[Turn],
        *,
        language: str = "",
        whole_conversation: bool = False,
    ) -> handoff_v1.EscalationDecision:
        return self._run(
            self._client.evaluate(conversation_id, turns, language=language, whole_conversation=whole_conversation)
        )

    def create(self, request: handoff_v1.CreateHandoffRequest) -> Tuple[handoff_v1.Handoff, bool]:
        return self._run(self._client.create(request))

    def get(self, handoff_id: str) -> handoff_v1.Handoff:
        return self._run(self._client.get(handoff_id))

    def cancel(self, handoff_id: str, reason: str = "") -> handoff_v1.Handoff:
        return self._run(self._client.cancel(handoff_id, reason))

    def check_availability(
        self,
        *,
        queue: str = "",
        phone_number: str = "",
        sip_uri: str = "",
        language: str = "en",
        intent: str = "",
        channel: str = "voice",
    ) -> Availability:
        """Whether a handoff would reach a human now; ask before promising
        one (see `AsyncClient.check_availability`)."""
        return self._run(
            self._client.check_availability(
                queue=queue, phone_number=phone_number, sip_uri=sip_uri, language=language, intent=intent, channel=channel
            )
        )

    def update(
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
        """Adds to the context while the customer waits; StaleContext when
        `context_version` is behind (see `AsyncClient.update`)."""
        return self._run(
            self._client.update(
                handoff_id,
                context_version=context_version,
                turns=turns,
                entities=entities,
                sensitive_entities=sensitive_entities,
                notes=notes,
                request_id=request_id,
            )
        )

    def converse(self, handoff_id: str, after_sequence: int = 0) -> "Conversation":
        """Opens a chat handoff's conversation (see `AsyncClient.converse`)."""
        return Conversation(self, self._run(self._client.converse(handoff_id, after_sequence)))

    def record_outcome(
        self,
        handoff_id: str,
        *,
        context_sufficient: Optional[bool] = None,
        customer_repeated: Optional[bool] = None,
        escalation_needed: Optional[bool] = None,
    ) -> handoff_v1.Handoff:
        """Records the human's judgements of an ended handoff (see
        `AsyncClient.record_outcome`)."""
        return self._run(
            self._client.record_outcome(
                handoff_id,
                context_sufficient=context_sufficient,
                customer_repeated=customer_repeated,
                escalation_needed=escalation_needed,
            )
        )

    def watch(self, handoff_id: str, after_sequence: int = 0) -> Iterator[HandoffUpdate]:
        return self._iterate(self._client.watch(handoff_id, after_sequence))

    def handoff(self, request: handoff_v1.CreateHandoffRequest) -> Iterator[HandoffUpdate]:
        return self._iterate(self._client.handoff(request))

    def _run(self, call: Coroutine[object, object, T]) -> T:
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

    def _iterate(self, updates: AsyncIterator[U]) -> Iterator[U]:
        async def next_update() -> U:
            return await updates.__anext__()

        try:
            while True:
                try:
                    yield self._run(next_update())
                except StopAsyncIteration:
                    return
        finally:
            close = getattr(updates, "aclose", None)
            if close is not None and not self._loop.is_closed():
                self._run(close())


class Conversation:
    """A chat handoff's conversation, blocking (`Client.converse()`):
    `send()` from any thread, iterate the entries (in one thread) until the
    handoff ends. Behaves as `AsyncConversation`: resumed after the last
    sequence when the stream breaks, each entry once and in order."""

    def __init__(self, client: Client, conversation: AsyncConversation) -> None:
        self._client = client
        self._conversation = conversation
        self.handoff_id = conversation.handoff_id

    def __enter__(self) -> "Conversation":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def last_sequence(self) -> int:
        """The last sequence seen: `converse()` after it to resume."""
        return self._conversation.last_sequence

    @property
    def opened(self) -> Optional[handoff_v1.ConverseOpened]:
        return self._conversation.opened

    @property
    def ended(self) -> bool:
        return self._conversation.ended

    def send(self, text: str, client_message_id: str = "") -> str:
        """Sends a message of the customer; its client_message_id."""
        return self._client._run(self._conversation.send(text, client_message_id))

    def __iter__(self) -> Iterator[ChatEntry]:
        return self._client._iterate(self._conversation.__aiter__())

    def close(self) -> None:
        if not self._client._loop.is_closed():
            self._client._run(self._conversation.close())
