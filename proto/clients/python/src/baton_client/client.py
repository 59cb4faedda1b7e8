"""The blocking client: `AsyncClient`'s calls, run on a private event loop
so that both behave the same (one implementation of retries and resume)."""

from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator, Coroutine, Iterator, Optional, Sequence, Tuple, TypeVar

from ._channel import Settings, Tls
from ._proto.baton.handoff.v1 import handoff_pb2 as handoff_v1
from .aio import AsyncClient
from .updates import HandoffUpdate, Turn

T = TypeVar("T")


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

    def watch(self, handoff_id: str, after_sequence: int = 0) -> Iterator[HandoffUpdate]:
        return self._iterate(self._client.watch(handoff_id, after_sequence))

    def handoff(self, request: handoff_v1.CreateHandoffRequest) -> Iterator[HandoffUpdate]:
        return self._iterate(self._client.handoff(request))

    def _run(self, call: Coroutine[object, object, T]) -> T:
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

    def _iterate(self, updates: AsyncIterator[HandoffUpdate]) -> Iterator[HandoffUpdate]:
        async def next_update() -> HandoffUpdate:
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
