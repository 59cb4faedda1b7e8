/**
 * Typed errors: what the control service refused, and why.
 *
 * The control service answers every refusal with a gRPC code, a message, and
 * `google.rpc` details in the `grpc-status-details-bin` trailer: an
 * `ErrorInfo` whose `reason` names the refusal (`HANDOFF_NOT_FOUND`,
 * `CONTEXT_VERSION_CONFLICT`, …, listed in `proto/README.md`), a `BadRequest`
 * naming every bad field, and a `RetryInfo` when waiting helps.
 * `BatonError.from` reads them all.
 */

import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryReader } from "@bufbuild/protobuf/wire";

/** One bad field of a request: its path (`context.summary`) and why. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** The gRPC name of each code (`INVALID_ARGUMENT`, …). */
const CODE_NAMES: Record<Code, string> = {
  [Code.Canceled]: "CANCELLED",
  [Code.Unknown]: "UNKNOWN",
  [Code.InvalidArgument]: "INVALID_ARGUMENT",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.FailedPrecondition]: "FAILED_PRECONDITION",
  [Code.Aborted]: "ABORTED",
  [Code.OutOfRange]: "OUT_OF_RANGE",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.Internal]: "INTERNAL",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "DATA_LOSS",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
};

/** What a `BatonError` is made of. */
export interface BatonErrorInit {
  code: Code;
  message: string;
  reason?: string;
  violations?: readonly FieldViolation[];
  retryAfter?: number;
  metadata?: Record<string, string>;
}

/** A call the control service refused, or that could not reach it. */
export class BatonError extends Error {
  /** The gRPC code (connect's `Code`, the same numbers as gRPC's). */
  readonly code: Code;
  /**
   * The `ErrorInfo` reason (`INVALID_ARGUMENT`, `HANDOFF_ENDED`, …); empty
   * when the refusal did not come from Baton (a proxy, the transport).
   */
  readonly reason: string;
  /** Every bad field, for INVALID_ARGUMENT. */
  readonly violations: readonly FieldViolation[];
  /** Seconds to wait before trying again, when the service says so. */
  readonly retryAfter: number | undefined;
  /** The `ErrorInfo` metadata (e.g. `current_context_version`). */
  readonly metadata: Readonly<Record<string, string>>;
  /** The service's own message, without the code and reason. */
  readonly rawMessage: string;

  constructor(init: BatonErrorInit) {
    const reason = init.reason ?? "";
    super(`${CODE_NAMES[init.code] ?? String(init.code)}${reason ? ` ${reason}` : ""}: ${init.message}`);
    this.name = new.target.name;
    this.code = init.code;
    this.rawMessage = init.message;
    this.reason = reason;
    this.violations = init.violations ?? [];
    this.retryAfter = init.retryAfter;
    this.metadata = init.metadata ?? {};
  }

  /** The gRPC name of the code: `INVALID_ARGUMENT`, `UNAVAILABLE`, … */
  get codeName(): string {
    return CODE_NAMES[this.code] ?? String(this.code);
  }

  /** The first bad field, for INVALID_ARGUMENT. */
  get field(): string | undefined {
    return this.violations[0]?.field;
  }

  /**
   * Whether trying the same call again soon may succeed: the service is
   * unavailable, or a limit asks to wait (`retryAfter`). A refusal that names
   * a later time for other reasons (every target closed) is not retried: the
   * runtime tells the customer instead.
   */
  get retryable(): boolean {
    if (TRANSIENT.has(this.code)) {
      return true;
    }
    return this.code === Code.ResourceExhausted && this.retryAfter !== undefined;
  }

  /**
   * Whether a client may send the same call again: any retryable refusal for
   * an idempotent call, only a limit's (which refused before doing anything)
   * for the others.
   */
  mayRetry(idempotent: boolean): boolean {
    if (idempotent) {
      return this.retryable;
    }
    return this.code === Code.ResourceExhausted && this.retryAfter !== undefined;
  }

  /** The typed error of a failed call (a `ConnectError`, or anything thrown). */
  static from(error: unknown): BatonError {
    if (error instanceof BatonError) {
      return error;
    }
    const connect = ConnectError.from(error);
    let reason = "";
    let violations: FieldViolation[] = [];
    let retryAfter: number | undefined;
    let metadata: Record<string, string> = {};
    for (const detail of connect.details) {
      // Details read from the trailer are the packed `Any`s: a type name and
      // the message's bytes.
      if (!("type" in detail) || !(detail.value instanceof Uint8Array)) {
        continue;
      }
      switch (detail.type) {
        case "google.rpc.ErrorInfo": {
          const info = decodeErrorInfo(detail.value);
          reason = info.reason;
          metadata = info.metadata;
          break;
        }
        case "google.rpc.BadRequest":
          violations = decodeBadRequest(detail.value);
          break;
        case "google.rpc.RetryInfo":
          retryAfter = decodeRetryInfo(detail.value);
          break;
      }
    }
    // A connection that broke or could not be made is UNAVAILABLE, as gRPC's
    // own clients report it (connect says ABORTED for a reset, INTERNAL for
    // most others): a transient failure, retried where that is safe.
    const code = reason === "" && brokenConnection(connect) ? Code.Unavailable : connect.code;
    const Kind =
      code === Code.Aborted && reason === "CONTEXT_VERSION_CONFLICT"
        ? ContextVersionConflict
        : (BY_CODE.get(code) ?? BatonError);
    return new Kind({ code, message: connect.rawMessage, reason, violations, retryAfter, metadata });
  }
}

/** A field of the request is wrong; `violations` names each. */
export class InvalidArgument extends BatonError {}
/** No such handoff (or entity) for this tenant. */
export class NotFound extends BatonError {}
/**
 * The handoff's state forbids the call (`HANDOFF_ENDED`, `CALLBACK_DIALING`,
 * `HANDOFF_CONNECTED`, …).
 */
export class FailedPrecondition extends BatonError {}
/**
 * ALREADY_EXISTS or ABORTED: a `requestId` reused for another request, or a
 * context version that moved on.
 */
export class Conflict extends BatonError {}
/**
 * ABORTED `CONTEXT_VERSION_CONFLICT`: an `update()` named a context version
 * the handoff has moved on from. `currentVersion` is the version now (when
 * the service named it): read the handoff again, or resend against it.
 */
export class ContextVersionConflict extends Conflict {
  /** The handoff's context version now, from the `current_context_version` metadata. */
  get currentVersion(): number | undefined {
    const current = this.metadata["current_context_version"];
    return current === undefined || current === "" || Number.isNaN(Number(current)) ? undefined : Number(current);
  }
}
/** The credential is missing, unknown or expired. */
export class Unauthenticated extends BatonError {}
/** The credential's role may not make this call. */
export class PermissionDenied extends BatonError {}
/** A limit was reached; `retryAfter` says when to try again. */
export class ResourceExhausted extends BatonError {}
/** The control service could not be reached or is shutting down. */
export class Unavailable extends BatonError {}

/** The Node errors of a connection that broke, or could not be made. */
const CONNECTION_ERRORS: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_STREAM_DESTROYED",
  "ERR_STREAM_PREMATURE_CLOSE",
  "ERR_HTTP2_INVALID_STREAM",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_STREAM_ERROR",
]);

function brokenConnection(error: ConnectError): boolean {
  const seen = new Set<unknown>();
  for (let cause: unknown = error.cause; cause instanceof Error && !seen.has(cause); cause = cause.cause) {
    seen.add(cause);
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string" && CONNECTION_ERRORS.has(code)) {
      return true;
    }
  }
  return false;
}

const TRANSIENT: ReadonlySet<Code> = new Set([Code.Unavailable, Code.DeadlineExceeded]);

const BY_CODE: ReadonlyMap<Code, typeof BatonError> = new Map<Code, typeof BatonError>([
  [Code.InvalidArgument, InvalidArgument],
  [Code.OutOfRange, InvalidArgument],
  [Code.NotFound, NotFound],
  [Code.FailedPrecondition, FailedPrecondition],
  [Code.AlreadyExists, Conflict],
  [Code.Aborted, Conflict],
  [Code.Unauthenticated, Unauthenticated],
  [Code.PermissionDenied, PermissionDenied],
  [Code.ResourceExhausted, ResourceExhausted],
  [Code.Unavailable, Unavailable],
  [Code.DeadlineExceeded, Unavailable],
]);

// The three `google.rpc` details the control service sends, read from their
// wire form (google/rpc/error_details.proto): small enough that neither a
// vendored copy of the googleapis protos nor a package of them is worth it.

/** Calls `onField` for each field of the message in `bytes`; skips the rest. */
function readFields(bytes: Uint8Array, onField: (field: number, reader: BinaryReader) => boolean): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (!onField(field, reader)) {
      reader.skip(wireType, field);
    }
  }
}

/** `ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }` */
function decodeErrorInfo(bytes: Uint8Array): { reason: string; metadata: Record<string, string> } {
  let reason = "";
  const metadata: Record<string, string> = {};
  readFields(bytes, (field, reader) => {
    if (field === 1) {
      reason = reader.string();
      return true;
    }
    if (field === 3) {
      let key = "";
      let value = "";
      readFields(reader.bytes(), (entryField, entry) => {
        if (entryField === 1) {
          key = entry.string();
          return true;
        }
        if (entryField === 2) {
          value = entry.string();
          return true;
        }
        return false;
      });
      metadata[key] = value;
      return true;
    }
    return false;
  });
  return { reason, metadata };
}

/** `BadRequest { repeated FieldViolation field_violations = 1; }`, each `{ string field = 1; string description = 2; }` */
function decodeBadRequest(bytes: Uint8Array): FieldViolation[] {
  const violations: FieldViolation[] = [];
  readFields(bytes, (field, reader) => {
    if (field !== 1) {
      return false;
    }
    let path = "";
    let description = "";
    readFields(reader.bytes(), (violationField, violation) => {
      if (violationField === 1) {
        path = violation.string();
        return true;
      }
      if (violationField === 2) {
        description = violation.string();
        return true;
      }
      return false;
    });
    violations.push({ field: path, description });
    return true;
  });
  return violations;
}

/** `RetryInfo { google.protobuf.Duration retry_delay = 1; }`, in seconds. */
function decodeRetryInfo(bytes: Uint8Array): number | undefined {
  let delay: number | undefined;
  readFields(bytes, (field, reader) => {
    if (field !== 1) {
      return false;
    }
    let seconds = 0;
    let nanos = 0;
    readFields(reader.bytes(), (durationField, duration) => {
      if (durationField === 1) {
        seconds = Number(duration.int64());
        return true;
      }
      if (durationField === 2) {
        nanos = duration.int32();
        return true;
      }
      return false;
    });
    delay = seconds + nanos / 1e9;
    return true;
  });
  return delay;
}
