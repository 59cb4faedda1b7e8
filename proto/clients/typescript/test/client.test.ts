/** The TypeScript client against a real `baton dev` (see baton-dev.ts). */

import { strict as assert } from "node:assert";
import { after, before, describe, test } from "node:test";
import { randomUUID } from "node:crypto";
import { inspect } from "node:util";

import {
  BatonClient,
  BatonError,
  Code,
  Conflict,
  ContextVersionConflict,
  FailedPrecondition,
  HandoffUpdate,
  InvalidArgument,
  NotFound,
  Unauthenticated,
  handoffRequest,
  handoffV1,
  typesV1,
} from "../src/index.js";
import { BatonDev, CuttableProxy } from "./baton-dev.js";

const CONNECTING = "I'm connecting you with a specialist";
const WRONG_KEY = "bk_0000000000000000_wrong";

function billingRequest(requestId = ""): handoffV1.CreateHandoffRequest {
  return handoffRequest({
    queue: "support",
    summary: "Charged twice for the March invoice; wants a refund",
    intent: "billing.dispute",
    intentConfidence: 0.92,
    entities: { issue_type: "double charge" },
    sensitiveEntities: { account_number: "12345678" },
    transcript: [
      ["customer", "I was charged twice"],
      ["ai", "Let me check"],
      ["customer", "I want a person"],
    ],
    reason: "explicit_request",
    requestId,
  });
}

async function collect(updates: AsyncIterable<HandoffUpdate>): Promise<HandoffUpdate[]> {
  const all: HandoffUpdate[] = [];
  for await (const update of updates) {
    all.push(update);
  }
  return all;
}

/**
 * The whole story of a handoff to `support` while nobody is signed in to the
 * embedded queue, each event once and in order.
 */
function assertFollowedToTheEnd(updates: HandoffUpdate[]): void {
  assert.deepEqual(
    updates.map((u) => u.sequence),
    updates.map((_, i) => i + 1),
  );
  const kinds = updates.map((u) => u.kind);
  const first = updates[0]!;
  const last = updates[updates.length - 1]!;
  assert.equal(first.kind, "CREATED");
  assert.ok(first.say.startsWith(CONNECTING), first.say);
  assert.equal(first.sayLanguage, "en");
  assert.ok(updates.slice(1).every((u) => !u.say));
  const failed = updates.filter((u) => u.kind === "TARGET_FAILED");
  assert.deepEqual(
    failed.map((u) => u.failureReason),
    ["NO_AGENTS"],
  );
  const queued = updates.filter((u) => u.kind === "QUEUED");
  assert.ok(queued.length > 0 && queued.every((u) => u.queuePosition), kinds.join(" "));
  assert.notEqual(queued[0]!.estimatedWaitSeconds, undefined);
  assert.ok(kinds.includes("CONNECTED"), kinds.join(" "));
  assert.ok(updates.some((u) => u.connected));
  assert.equal(last.kind, "COMPLETED");
  assert.ok(last.terminal);
  assert.ok(!updates.slice(0, -1).some((u) => u.terminal));
}

// The tests share one `baton dev` and run at once: each handoff takes about
// 25 s of scripted contact center.
describe("against baton dev", { concurrency: true, timeout: 180_000 }, () => {
  let dev: BatonDev;
  const clients: BatonClient[] = [];

  before(async () => {
    dev = await BatonDev.start();
  });

  after(async () => {
    for (const client of clients) {
      client.close();
    }
    await dev?.stop();
  });

  function client(target = "", credential = ""): BatonClient {
    const made = new BatonClient(target || dev.address, { credential: credential || dev.apiKey, timeoutMs: 10_000 });
    clients.push(made);
    return made;
  }

  test("evaluate honours an explicit request", async () => {
    const decision = await client().evaluate("ts-evaluate", [["customer", "I want to talk to a person"]], {
      language: "en",
    });
    assert.ok(decision.escalate);
    assert.equal(decision.fired[0]?.kind, typesV1.EscalationKind.EXPLICIT_REQUEST);
    assert.ok(decision.customerMessage);
  });

  test("evaluate does not escalate a plain question", async () => {
    const decision = await client().evaluate("ts-calm", [["customer", "What are your opening hours?"]], {
      language: "en",
    });
    assert.ok(!decision.escalate);
  });

  test("a handoff is followed to its end", async () => {
    const baton = client();
    const updates = await collect(baton.handoff(billingRequest()));
    assertFollowedToTheEnd(updates);
    // Too late to cancel: a typed refusal that says why.
    await assert.rejects(baton.cancel(updates[0]!.handoffId), (error: unknown) => {
      assert.ok(error instanceof FailedPrecondition, String(error));
      assert.equal(error.reason, "HANDOFF_ENDED");
      return true;
    });
  });

  test("the watch resumes after the stream breaks", async () => {
    const proxy = await CuttableProxy.start(dev.address);
    try {
      const updates: HandoffUpdate[] = [];
      for await (const update of client(proxy.address).handoff(billingRequest())) {
        updates.push(update);
        if (update.kind === "TARGET_FAILED" || update.kind === "OFFERED") {
          proxy.cut();
        }
      }
      // Cut twice, reconnected each time: nothing missed, nothing twice.
      assertFollowedToTheEnd(updates);
      assert.ok(proxy.accepted >= 3, `${proxy.accepted} connections`);
    } finally {
      await proxy.close();
    }
  });

  test("create is idempotent", async () => {
    const baton = client();
    const request = billingRequest();
    request.requestId = "";
    const first = await baton.create(request);
    assert.ok(first.created);
    assert.ok(request.requestId.startsWith("ts-"), "the client made the request id");
    const again = await baton.create(request);
    assert.ok(!again.created);
    assert.equal(again.handoff.id, first.handoff.id);
    await baton.cancel(first.handoff.id, "test over");
  });

  test("cancel ends the handoff and the watch", async () => {
    const baton = client();
    const { handoff } = await baton.create(billingRequest());
    const cancelled = await baton.cancel(handoff.id, "the customer hung up");
    assert.equal(cancelled.state, handoffV1.HandoffState.CANCELLED);
    // Cancelling is idempotent: a retried cancel answers the same.
    assert.equal((await baton.cancel(handoff.id)).state, handoffV1.HandoffState.CANCELLED);
    const updates = await collect(baton.watch(handoff.id));
    const last = updates[updates.length - 1]!;
    assert.equal(last.kind, "CANCELLED");
    assert.equal(last.failureReason, "CANCELLED");
    // After the end, the watch from the last event ends at once.
    assert.deepEqual(await collect(baton.watch(handoff.id, last.sequence)), []);
  });

  test("availability of the support queue: open, with what to say", async () => {
    const answer = await client().checkAvailability({ queue: "support", language: "en" });
    assert.ok(answer.open);
    assert.ok(answer.customerMessage.startsWith(CONNECTING), answer.customerMessage);
    assert.equal(answer.customerMessageLanguage, "en");
    // The embedded queue first, the demo contact center behind it; no
    // business hours in baton dev.
    assert.equal(answer.target?.connector, "queue");
    assert.equal(answer.fallback?.connector, "demo");
    assert.equal(answer.closesAt, undefined);
    assert.equal(answer.closedTargets, 0);
    await assert.rejects(client().checkAvailability({ queue: "support", language: "en", route: "x" }), TypeError);
  });

  test("update adds to a waiting handoff's context, once, against the version read; the outcome is recorded once", async () => {
    const baton = client();
    const { handoff } = await baton.create(billingRequest());
    // Nobody is at the desktop: the handoff routes, falls back to the demo
    // contact center and waits there a few seconds before a human answers.
    assert.equal(handoff.contextVersion, 1n);
    const updated = await baton.update(handoff.id, {
      contextVersion: handoff.contextVersion,
      turns: [["customer", "My address changed last week too"]],
      entities: { city: "Oslo" },
      notes: "Asked twice about the refund date",
    });
    assert.ok(updated.applied);
    assert.equal(updated.contextVersion, 2);
    assert.ok(updated.requestId.startsWith("ts-"));
    assert.equal(updated.handoff.context?.transcript.at(-1)?.text, "My address changed last week too");
    assert.equal(updated.handoff.context?.transcript.length, 4);
    assert.equal(updated.handoff.context?.entities.find((e) => e.name === "city")?.value, "Oslo");
    // The same request id again (a retry): applied once.
    const again = await baton.update(handoff.id, {
      contextVersion: handoff.contextVersion,
      turns: [["customer", "My address changed last week too"]],
      entities: { city: "Oslo" },
      notes: "Asked twice about the refund date",
      requestId: updated.requestId,
    });
    assert.ok(!again.applied);
    assert.equal(again.contextVersion, 2);
    assert.equal((await baton.get(handoff.id)).context?.transcript.length, 4);
    // A stale version is refused with the version now.
    await assert.rejects(baton.update(handoff.id, { contextVersion: 1, notes: "stale" }), (error: unknown) => {
      assert.ok(error instanceof ContextVersionConflict, String(error));
      assert.equal(error.code, Code.Aborted);
      assert.equal(error.reason, "CONTEXT_VERSION_CONFLICT");
      assert.equal(error.currentVersion, 2);
      assert.ok(!error.retryable);
      return true;
    });
    const updates = await collect(baton.watch(handoff.id));
    assert.ok(updates.some((u) => u.kind === "CONTEXT_UPDATED"));
    assert.equal(updates.at(-1)?.kind, "COMPLETED");
    // Once a human has had the customer: too late.
    await assert.rejects(baton.update(handoff.id, { contextVersion: 2, notes: "late" }), FailedPrecondition);
    // The human's judgements, recorded once; different ones conflict.
    const judged = await baton.recordOutcome(handoff.id, { contextSufficient: true, customerRepeated: false });
    assert.equal(judged.outcome?.contextSufficient, typesV1.Judgement.YES);
    assert.equal(judged.outcome?.customerRepeated, typesV1.Judgement.NO);
    const same = await baton.recordOutcome(handoff.id, { contextSufficient: true, customerRepeated: false });
    assert.equal(same.outcome?.contextSufficient, typesV1.Judgement.YES);
    await assert.rejects(baton.recordOutcome(handoff.id, { contextSufficient: false }), Conflict);
  });

  test("a bad field is named", async () => {
    const request = handoffRequest({ phoneNumber: "555-0100", summary: "Wants a refund" });
    await assert.rejects(client().create(request), (error: unknown) => {
      assert.ok(error instanceof InvalidArgument, String(error));
      assert.equal(error.reason, "INVALID_ARGUMENT");
      assert.equal(error.field, "target.phone_number");
      assert.ok(error.violations[0]?.description);
      assert.ok(!error.retryable);
      return true;
    });
  });

  test("an unknown handoff is not found, a malformed id is a bad field", async () => {
    await assert.rejects(client().get(randomUUID()), (error: unknown) => {
      assert.ok(error instanceof NotFound, String(error));
      assert.equal(error.codeName, "NOT_FOUND");
      assert.equal(error.reason, "HANDOFF_NOT_FOUND");
      return true;
    });
    await assert.rejects(client().get("not-a-handoff-id"), (error: unknown) => {
      assert.ok(error instanceof InvalidArgument, String(error));
      assert.equal(error.field, "handoff_id");
      return true;
    });
  });

  test("a wrong credential is refused, and never shown", async () => {
    const baton = client("", WRONG_KEY);
    await assert.rejects(baton.get("does-not-matter"), (error: unknown) => {
      assert.ok(error instanceof Unauthenticated, String(error));
      assert.equal(error.reason, "CREDENTIAL_INVALID");
      assert.ok(!String(error).includes(WRONG_KEY));
      assert.ok(!inspect(error).includes(WRONG_KEY));
      return true;
    });
    assert.ok(!inspect(baton).includes(WRONG_KEY));
    assert.ok(!String(baton).includes(WRONG_KEY));
    assert.ok(!JSON.stringify(baton).includes(WRONG_KEY));
  });
});

describe("against baton dev with TLS", { timeout: 120_000 }, () => {
  let dev: BatonDev;

  before(async () => {
    dev = await BatonDev.start({ tls: true });
  });

  after(async () => {
    await dev?.stop();
  });

  test("a client that trusts the CA is served", async () => {
    const baton = new BatonClient(dev.address, { credential: dev.apiKey, tls: { caFile: dev.caFile! } });
    try {
      assert.match(String(baton), /tls=true/);
      const decision = await baton.evaluate("ts-tls", [["customer", "I want to talk to a person"]]);
      assert.ok(decision.escalate);
    } finally {
      baton.close();
    }
  });

  test("a client that does not trust it, or speaks plain HTTP/2, is refused", async () => {
    for (const options of [{ tls: true }, {}]) {
      const baton = new BatonClient(dev.address, { credential: dev.apiKey, timeoutMs: 2000, retries: 0, ...options });
      try {
        await assert.rejects(baton.get(randomUUID()), (error: unknown) => {
          assert.ok(error instanceof BatonError, String(error));
          assert.ok(!(error instanceof NotFound), String(error));
          assert.ok(!String(error).includes(dev.apiKey));
          return true;
        });
      } finally {
        baton.close();
      }
    }
  });
});

describe("without a server", () => {
  test("an unreachable service is unavailable after the retries", async () => {
    const baton = new BatonClient("127.0.0.1:1", { credential: "bk_x", timeoutMs: 1000, retries: 1 });
    try {
      await assert.rejects(baton.get("x"), (error: unknown) => {
        assert.ok(error instanceof BatonError, String(error));
        assert.equal(error.code, Code.Unavailable);
        assert.ok(error.retryable);
        return true;
      });
    } finally {
      baton.close();
    }
  });

  test("the request builder refuses what it cannot send", () => {
    assert.throws(() => handoffRequest({ summary: "x" }), TypeError);
    assert.throws(() => handoffRequest({ summary: "x", queue: "a", sipUri: "sip:b@example.com" }), TypeError);
    assert.throws(
      // @ts-expect-error: a speaker the types refuse, as plain JavaScript could send it.
      () => handoffRequest({ summary: "x", queue: "a", transcript: [["robot", "hi"]] }),
      TypeError,
    );
    assert.throws(() => handoffRequest({ summary: "x", queue: "a", reason: "boredom" }), TypeError);
    // @ts-expect-error: a channel the types refuse.
    assert.throws(() => handoffRequest({ summary: "x", queue: "a", channel: "fax" }), TypeError);
  });

  test("the request builder fills in the common fields", () => {
    const request = billingRequest("ts-fixed");
    assert.equal(request.requestId, "ts-fixed");
    assert.equal(request.target?.kind.case, "queue");
    assert.equal(request.conversation?.channel, typesV1.Channel.VOICE);
    assert.equal(request.context?.entities.find((e) => e.name === "account_number")?.sensitive, true);
    assert.equal(request.context?.transcript.length, 3);
    assert.equal(request.context?.reason?.kind, typesV1.EscalationKind.EXPLICIT_REQUEST);
  });
});
