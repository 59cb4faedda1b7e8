"""The runtime's side of a chat handoff: the customer's messages to the
human and the conversation's entries back, over ConverseHandoff."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, AsyncIterator, Dict, Optional

import grpc
import grpc.aio

from ._channel import Settings, backoff
from ._proto.baton.handoff.v1 import handoff_pb2 as handoff_v1
from ._proto.baton.type.v1 import chat_pb2 as chat_v1
from .errors import BatonError, FailedPrecondition, Unavailable
from .updates import new_request_id

#: What a stream's read() answers once the stream ended cleanly.
_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ChatEntry:
    """One entry of a chat handoff's conversation log, in order of
    `sequence`: a message (the customer's, echoed once stored, or the
    human's) or, last, the end of the conversation."""

    handoff_id: str
    sequence: int
    #: `MESSAGE` or `ENDED` (the last entry: the handoff ended).
    kind: str
    #: `CUSTOMER`, `HUMAN` or `SYSTEM`.
    author: str
    #: The human's display name, on their messages.
    author_name: str
    text: str
    #: The id `send()` gave a customer message; empty on the others.
    client_message_id: str
    #: On ENDED: `COMPLETED`, `CANCELLED`, `FAILED` or `HANDED_BACK`.
    end_reason: str
    entry: chat_v1.ChatEntry

    @property
    def ended(self) -> bool:
        """The conversation is over: no entry follows."""
        return self.kind == "ENDED"

    @property
    def from_human(self) -> bool:
        return self.author == "HUMAN"

    @staticmethod
    def of(entry: chat_v1.ChatEntry) -> "ChatEntry":
        return ChatEntry(
            handoff_id=entry.handoff_id,
            sequence=entry.sequence,
            kind=_short(chat_v1.ChatEntryKind.Name(entry.kind), "CHAT_ENTRY_KIND_"),
            author=_short(chat_v1.ChatAuthor.Name(entry.author), "CHAT_AUTHOR_"),
            author_name=entry.author_name,
            text=entry.text,
            client_message_id=entry.client_message_id,
            end_reason=(
                _short(chat_v1.ChatEndReason.Name(entry.end_reason), "CHAT_END_REASON_") if entry.end_reason else ""
            ),
            entry=entry,
        )


def _short(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


class AsyncConversation:
    """An open ConverseHandoff stream of a chat handoff (made by
    `AsyncClient.converse()`): `send()` the customer's messages, iterate
    the conversation's entries until the handoff ends.

    Each entry arrives once and in order, the customer's own messages too
    (a message is stored once it comes back with its sequence). A broken
    stream is reopened after the last sequence seen, and the messages sent
    but not yet echoed are sent again with the same `client_message_id`:
    Baton stores each once. Iterate from one task only; `send()` may be
    called from any task of the same event loop.
    """

    def __init__(self, stub: Any, settings: Settings, handoff_id: str, after_sequence: int) -> None:
        self._stub = stub
        self._settings = settings
        self.handoff_id = handoff_id
        #: The last sequence seen; a new `converse()` after it misses nothing.
        self.last_sequence = after_sequence
        #: Where the conversation stood when the stream (re)opened.
        self.opened: Optional[handoff_v1.ConverseOpened] = None
        #: The latest sequence the human has read, and whether they are typing.
        self.human_read_through = 0
        self.human_typing = False
        self._call: Optional[Any] = None
        self._pending: Dict[str, str] = {}
        self._ended = False
        self._closed = False

    async def __aenter__(self) -> "AsyncConversation":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the stream (the handoff goes on; `converse()` again after
        `last_sequence` to resume)."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()
            self._call = None

    @property
    def ended(self) -> bool:
        """The ENDED entry was read: the handoff is over."""
        return self._ended

    async def send(self, text: str, client_message_id: str = "") -> str:
        """Sends a message of the customer; its `client_message_id` (made
        when empty). The message is stored once it comes back as an entry;
        until then a reconnect sends it again, stored once. After the end:
        FailedPrecondition (`HANDOFF_ENDED`)."""
        if self._ended:
            raise FailedPrecondition(grpc.StatusCode.FAILED_PRECONDITION, "the conversation has ended", "HANDOFF_ENDED")
        message_id = client_message_id or new_request_id()
        self._pending[message_id] = text
        call = self._call
        if call is not None:
            try:
                await asyncio.wait_for(call.write(_message(message_id, text)), self._settings.timeout)
            except (grpc.RpcError, asyncio.InvalidStateError, asyncio.TimeoutError, grpc.aio.UsageError):
                # The stream broke: the iteration reopens it and sends the
                # message again.
                pass
        return message_id

    def __aiter__(self) -> AsyncIterator[ChatEntry]:
        return self._entries()

    async def open(self) -> handoff_v1.ConverseOpened:
        """Opens (or reopens) the stream after `last_sequence` and sends
        the messages not yet echoed; where the conversation stands. A
        transient failure is retried; a handoff that is not a chat, or that
        ended with nothing left to read, is FailedPrecondition."""
        attempt = 0
        while True:
            call = self._stub.ConverseHandoff(metadata=self._settings.metadata)
            try:
                opening = handoff_v1.ConverseHandoffRequest(
                    open=handoff_v1.ConverseOpen(handoff_id=self.handoff_id, after_sequence=self.last_sequence)
                )
                await asyncio.wait_for(call.write(opening), self._settings.timeout)
                first = await asyncio.wait_for(call.read(), self._settings.timeout)
                if first is _EOF:
                    raise Unavailable(grpc.StatusCode.UNAVAILABLE, "the conversation ended before it opened")
                if not first.HasField("opened"):
                    raise Unavailable(grpc.StatusCode.UNAVAILABLE, "the first answer is not `opened`")
                for message_id, text in list(self._pending.items()):
                    await asyncio.wait_for(call.write(_message(message_id, text)), self._settings.timeout)
            except (grpc.RpcError, BatonError, asyncio.TimeoutError, asyncio.InvalidStateError) as failure:
                call.cancel()
                error = _error_of(failure)
                attempt += 1
                if not _broken(error) or attempt > self._settings.retries:
                    raise error from None
                await asyncio.sleep(backoff(attempt, error.retry_after))
                continue
            opened: handoff_v1.ConverseOpened = first.opened
            self._call = call
            self.opened = opened
            self.human_read_through = max(self.human_read_through, opened.human_read_through)
            return opened

    async def _entries(self) -> AsyncIterator[ChatEntry]:
        failures = 0
        while not self._ended and not self._closed:
            if self._call is None:
                await self.open()
            call = self._call
            assert call is not None
            error: Optional[BatonError] = None
            try:
                response = await call.read()
            except grpc.RpcError as rpc_error:
                error = BatonError.from_rpc(rpc_error)
                if not _broken(error):
                    raise error from None
                response = None
            except asyncio.InvalidStateError:
                response = None
            if response is None or response is _EOF:
                # Broken, or ended without ENDED: reopen after the last
                # sequence seen (an ended handoff answers ENDED again, or
                # FailedPrecondition when nothing is left to read).
                if self._closed:
                    return
                self._call = None
                call.cancel()
                failures += 1
                if failures > self._settings.retries:
                    raise error or Unavailable(grpc.StatusCode.UNAVAILABLE, "the conversation kept ending early")
                await asyncio.sleep(backoff(failures, error.retry_after if error else None))
                continue
            kind = response.WhichOneof("kind")
            if kind == "typing":
                if response.typing.author == chat_v1.CHAT_AUTHOR_HUMAN:
                    self.human_typing = response.typing.active
            elif kind == "read":
                if response.read.author == chat_v1.CHAT_AUTHOR_HUMAN:
                    self.human_read_through = max(self.human_read_through, response.read.through_sequence)
            elif kind == "entry":
                entry = response.entry
                if entry.sequence <= self.last_sequence:
                    continue
                self.last_sequence, failures = entry.sequence, 0
                self._pending.pop(entry.client_message_id, None)
                chat = ChatEntry.of(entry)
                if chat.ended:
                    self._ended = True
                    self._call = None
                    call.cancel()
                if chat.from_human:
                    self.human_typing = False
                yield chat


def _message(message_id: str, text: str) -> handoff_v1.ConverseHandoffRequest:
    return handoff_v1.ConverseHandoffRequest(
        message=chat_v1.ChatMessageDraft(client_message_id=message_id, text=text)
    )


def _broken(error: BatonError) -> bool:
    """Whether the stream broke (and reopening it after the last sequence
    seen is safe) rather than Baton refusing: a transient failure, or
    INTERNAL/UNKNOWN without Baton's reason, which grpc.aio reports when a
    write met a connection that had just died."""
    if error.retryable:
        return True
    return not error.reason and error.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


def _error_of(failure: BaseException) -> BatonError:
    if isinstance(failure, BatonError):
        return failure
    if isinstance(failure, grpc.RpcError):
        return BatonError.from_rpc(failure)
    return Unavailable(grpc.StatusCode.UNAVAILABLE, f"the conversation did not open: {type(failure).__name__}")
