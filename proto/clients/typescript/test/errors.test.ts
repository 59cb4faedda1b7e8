/**
 * The typed errors, read from a `grpc-status-details-bin` trailer made here
 * as the control service makes it: every detail the server sends, without a
 * server (the tests against `baton dev` cannot provoke a rate limit).
 */

import { strict as assert } from "node:assert";
import { test } from "node:test";
import { inspect } from "node:util";

import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { ConnectError } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";

import {
  BatonError,
  Code,
  Conflict,
  ContextVersionConflict,
  FailedPrecondition,
  InvalidArgument,
  PermissionDenied,
  ResourceExhausted,
  Unavailable,
  backoffMs,
} from "../src/index.js";

type Detail = [typeName: string, bytes: Uint8Array];

function errorInfo(reason: string, metadata: Record<string, string> = {}): Detail {
  const info = new BinaryWriter().tag(1, 2).string(reason).tag(2, 2).string("baton");
  for (const [key, value] of Object.entries(metadata)) {
    info.tag(3, 2).bytes(new BinaryWriter().tag(1, 2).string(key).tag(2, 2).string(value).finish());
  }
  return ["google.rpc.ErrorInfo", info.finish()];
}

function badRequest(...violations: [string, string][]): Detail {
  const bad = new BinaryWriter();
  for (const [field, description] of violations) {
    bad.tag(1, 2).bytes(new BinaryWriter().tag(1, 2).string(field).tag(2, 2).string(description).finish());
  }
  return ["google.rpc.BadRequest", bad.finish()];
}

function retryInfo(seconds: number, nanos: number): Detail {
  const delay = new BinaryWriter().tag(1, 0).int64(seconds).tag(2, 0).int32(nanos).finish();
  return ["google.rpc.RetryInfo", new BinaryWriter().tag(1, 2).bytes(delay).finish()];
}

/** The error the gRPC transport reads from these trailers. */
function refusal(code: Code, message: string, ...details: Detail[]): BatonError {
  const status = new BinaryWriter().tag(1, 0).int32(code).tag(2, 2).string(message);
  for (const [typeName, bytes] of details) {
    const any = new BinaryWriter().tag(1, 2).string(`type.googleapis.com/${typeName}`).tag(2, 2).bytes(bytes);
    status.tag(3, 2).bytes(any.finish());
  }
  const trailer = new Headers({
    "grpc-status": String(code),
    "grpc-message": encodeURIComponent(message),
    "grpc-status-details-bin": Buffer.from(status.finish()).toString("base64").replace(/=+$/, ""),
  });
  const error = findTrailerError(trailer);
  assert.ok(error instanceof ConnectError);
  return BatonError.from(error);
}

test("a bad request names every field", () => {
  const error = refusal(
    Code.InvalidArgument,
    "2 fields are invalid",
    errorInfo("INVALID_ARGUMENT"),
    badRequest(["context.summary", "must not be empty"], ["target", "name one target"]),
  );
  assert.ok(error instanceof InvalidArgument);
  assert.equal(error.reason, "INVALID_ARGUMENT");
  assert.equal(error.field, "context.summary");
  assert.deepEqual(error.violations, [
    { field: "context.summary", description: "must not be empty" },
    { field: "target", description: "name one target" },
  ]);
  assert.equal(error.message, "INVALID_ARGUMENT INVALID_ARGUMENT: 2 fields are invalid");
  assert.equal(error.rawMessage, "2 fields are invalid");
  assert.ok(!error.retryable);
});

test("a rate limit says when to try again, and is retried", () => {
  const error = refusal(
    Code.ResourceExhausted,
    "too many calls",
    errorInfo("RATE_LIMITED", { limit: "create" }),
    retryInfo(2, 500_000_000),
  );
  assert.ok(error instanceof ResourceExhausted);
  assert.equal(error.reason, "RATE_LIMITED");
  assert.equal(error.retryAfter, 2.5);
  assert.deepEqual(error.metadata, { limit: "create" });
  assert.ok(error.retryable);
  assert.ok(error.mayRetry(false), "a limit refused before doing anything");
  assert.equal(backoffMs(1, error.retryAfter), 2500);
});

test("a limit without a time to wait is not retried", () => {
  const error = refusal(Code.ResourceExhausted, "too many watch streams", errorInfo("WATCH_STREAMS_FULL"));
  assert.ok(error instanceof ResourceExhausted);
  assert.equal(error.retryAfter, undefined);
  assert.ok(!error.retryable);
});

test("each code has its class", () => {
  assert.ok(refusal(Code.FailedPrecondition, "ended", errorInfo("HANDOFF_ENDED")) instanceof FailedPrecondition);
  const stale = refusal(
    Code.Aborted,
    "moved on",
    errorInfo("CONTEXT_VERSION_CONFLICT", { current_context_version: "7" }),
  );
  assert.ok(stale instanceof ContextVersionConflict && stale instanceof Conflict);
  assert.equal(stale.currentVersion, 7);
  assert.equal((refusal(Code.Aborted, "moved on", errorInfo("CONTEXT_VERSION_CONFLICT")) as ContextVersionConflict).currentVersion, undefined);
  assert.ok(!(refusal(Code.AlreadyExists, "reused", errorInfo("REQUEST_ID_REUSED")) instanceof ContextVersionConflict));
  assert.ok(refusal(Code.AlreadyExists, "reused", errorInfo("REQUEST_ID_REUSED")) instanceof Conflict);
  assert.ok(refusal(Code.PermissionDenied, "this role may not cancel") instanceof PermissionDenied);
  const unavailable = refusal(Code.Unavailable, "shutting down");
  assert.ok(unavailable instanceof Unavailable);
  assert.equal(unavailable.reason, "");
  assert.ok(unavailable.retryable && unavailable.mayRetry(true) && !unavailable.mayRetry(false));
  const internal = refusal(Code.Internal, "oops");
  assert.ok(internal instanceof BatonError && !(internal instanceof Unavailable));
  assert.equal(internal.codeName, "INTERNAL");
});

test("a broken connection is unavailable", () => {
  const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
  const error = BatonError.from(new ConnectError("read ECONNRESET", Code.Aborted, undefined, undefined, reset));
  assert.ok(error instanceof Unavailable);
  assert.ok(error.retryable);
});

test("an error shows its code, reason and message, nothing else", () => {
  const error = refusal(Code.FailedPrecondition, "the handoff has ended", errorInfo("HANDOFF_ENDED"));
  assert.equal(String(error), "FailedPrecondition: FAILED_PRECONDITION HANDOFF_ENDED: the handoff has ended");
  assert.ok(inspect(error).includes("HANDOFF_ENDED"));
});

test("the backoff doubles up to 5 s, and a service's wait is capped at 30 s", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffMs(attempt, undefined)),
    [200, 400, 800, 1600, 3200, 5000, 5000],
  );
  assert.equal(backoffMs(1, 120), 30_000);
});
