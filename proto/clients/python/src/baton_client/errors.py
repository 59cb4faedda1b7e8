"""Typed errors: what the control service refused, and why.

The control service answers every refusal with a gRPC code, a message, and
`google.rpc` details: an `ErrorInfo` whose `reason` names the refusal
(`HANDOFF_NOT_FOUND`, `CONTEXT_VERSION_CONFLICT`, …, listed in
`proto/README.md`), a `BadRequest` naming every bad field, and a
`RetryInfo` when waiting helps. `BatonError.from_rpc` reads them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type, cast

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (`context.summary`) and why."""

    field: str
    description: str


@dataclass
class BatonError(Exception):
    """A call the control service refused, or that could not reach it."""

    code: grpc.StatusCode
    message: str
    #: The `ErrorInfo` reason (`INVALID_ARGUMENT`, `HANDOFF_ENDED`, …); empty
    #: when the refusal did not come from Baton (a proxy, the transport).
    reason: str = ""
    violations: Tuple[FieldViolation, ...] = ()
    #: Seconds to wait before trying again, when the service says so.
    retry_after: Optional[float] = None
    #: The `ErrorInfo` metadata (e.g. `current_context_version`).
    metadata: Dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.code.name}{reason}: {self.message}"

    @property
    def field(self) -> Optional[str]:
        """The first bad field, for INVALID_ARGUMENT."""
        return self.violations[0].field if self.violations else None

    @property
    def retryable(self) -> bool:
        """Whether trying the same call again soon may succeed: the service
        is unavailable, or a limit asks to wait (`retry_after`). A refusal
        that names a later time for other reasons (every target closed) is
        not retried: the runtime tells the customer instead."""
        if self.code in _TRANSIENT:
            return True
        return self.code == grpc.StatusCode.RESOURCE_EXHAUSTED and self.retry_after is not None

    def may_retry(self, idempotent: bool) -> bool:
        """Whether a client may send the same call again: any retryable
        refusal for an idempotent call, only a limit's (which refused before
        doing anything) for the others."""
        if idempotent:
            return self.retryable
        return self.code == grpc.StatusCode.RESOURCE_EXHAUSTED and self.retry_after is not None

    @staticmethod
    def from_rpc(error: grpc.RpcError) -> "BatonError":
        """The typed error of a failed call (sync or asyncio)."""
        code: grpc.StatusCode = error.code()
        message: str = error.details() or ""
        # Pairs in both APIs (named tuples in grpc, tuples in grpc.aio).
        trailers = cast(Iterable[Tuple[str, Any]], error.trailing_metadata() or ())
        reason, violations, retry_after, metadata = "", [], None, {}
        for key, value in trailers:
            if key != _DETAILS_KEY:
                continue
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason, metadata = info.reason, dict(info.metadata)
                elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    violations = [FieldViolation(v.field, v.description) for v in bad.field_violations]
                elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    retry = error_details_pb2.RetryInfo()
                    detail.Unpack(retry)
                    retry_after = retry.retry_delay.ToTimedelta().total_seconds()
        kind = _BY_CODE.get(code, BatonError)
        return kind(code, message, reason, tuple(violations), retry_after, metadata)


class InvalidArgument(BatonError):
    """A field of the request is wrong; `violations` names each."""


class NotFound(BatonError):
    """No such handoff (or entity) for this tenant."""


class FailedPrecondition(BatonError):
    """The handoff's state forbids the call (`HANDOFF_ENDED`,
    `CALLBACK_DIALING`, `HANDOFF_CONNECTED`, …)."""


class Conflict(BatonError):
    """ALREADY_EXISTS or ABORTED: a `request_id` reused for another
    request, or a context version that moved on."""


class StaleContext(Conflict):
    """ABORTED (`CONTEXT_VERSION_CONFLICT`): `update()` named a context
    version the handoff has moved past. `current_version` is the version it
    has now (when the service said it): read the handoff again, decide
    whether the update still applies, and resend with that version."""

    @property
    def current_version(self) -> Optional[int]:
        value = self.metadata.get("current_context_version", "")
        return int(value) if value.isdigit() else None


class Unauthenticated(BatonError):
    """The credential is missing, unknown or expired."""


class PermissionDenied(BatonError):
    """The credential's role may not make this call."""


class ResourceExhausted(BatonError):
    """A limit was reached; `retry_after` says when to try again."""


class Unavailable(BatonError):
    """The control service could not be reached or is shutting down."""


_TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}

_BY_CODE: Dict[grpc.StatusCode, Type[BatonError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.ABORTED: StaleContext,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
}

__all__: List[str] = [
    "BatonError",
    "Conflict",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "StaleContext",
    "Unauthenticated",
    "Unavailable",
]
