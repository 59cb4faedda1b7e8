"""What the sync and asyncio clients share: credentials, channels, backoff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import grpc

Metadata = Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class Tls:
    """TLS to the control service. `root_certificates` (PEM) verifies it
    (default: the system's roots); `certificate_chain` and `private_key`
    (PEM) are the client certificate, for a service that requires one."""

    root_certificates: Optional[bytes] = None
    certificate_chain: Optional[bytes] = None
    private_key: Optional[bytes] = None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


@dataclass(frozen=True)
class Settings:
    """How a client reaches the control service and retries."""

    target: str
    #: An API key (`bk_…`) or a bearer token (JWT); sent as
    #: `authorization: Bearer …`, never logged.
    credential: Optional[str]
    tls: Optional[Tls]
    #: Deadline of each unary call, in seconds.
    timeout: float
    #: How many times a call that failed for a transient reason is tried
    #: again (with the same request id for CreateHandoff), and how many
    #: times in a row a broken watch is resumed.
    retries: int
    options: Sequence[Tuple[str, object]] = ()

    def __repr__(self) -> str:
        # The credential stays out of logs and tracebacks.
        return f"Settings(target={self.target!r}, tls={self.tls is not None}, timeout={self.timeout})"

    @property
    def metadata(self) -> Metadata:
        if not self.credential:
            return ()
        return (("authorization", f"Bearer {self.credential}"),)


def backoff(attempt: int, retry_after: Optional[float]) -> float:
    """Seconds before try `attempt` (1, 2, …): what the service asked for,
    else 0.2 s doubling up to 5 s."""
    if retry_after is not None:
        return min(retry_after, 30.0)
    return float(min(0.2 * 2 ** (attempt - 1), 5.0))
