/**
 * A chat handoff's conversation through `converse()`, against a real
 * `baton dev` whose desktop agent (signed in over the desktop's HTTP API,
 * see desk.ts) plays the human. Its own `baton dev`: with an agent
 * available, the voice handoffs of client.test.ts would reach her.
 */

import { strict as assert } from "node:assert";
import { after, before, describe, test } from "node:test";

import { BatonClient, ChatUpdate, FailedPrecondition, handoffRequest } from "../src/index.js";
import { BatonDev, CuttableProxy } from "./baton-dev.js";
import { Desk } from "./desk.js";

const WAIT_MS = 30_000;

/** `promise`, or a failure naming `what` after WAIT_MS. */
async function within<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${WAIT_MS} ms`)), WAIT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe("a chat handoff against baton dev", { timeout: 180_000 }, () => {
  let dev: BatonDev;

  before(async () => {
    dev = await BatonDev.start();
  });

  after(async () => {
    await dev?.stop();
  });

  test("the runtime and the human chat in order, across a broken stream, until the end", async () => {
    assert.ok(dev.desktop && dev.agentPassword, "the banner names the desktop and the agent's password");
    const desk = await Desk.signIn(dev.desktop, "agent", dev.agentPassword);
    await desk.available();
    const proxy = await CuttableProxy.start(dev.address);
    const baton = new BatonClient(proxy.address, { credential: dev.apiKey });
    try {
      const { handoff } = await baton.create(
        handoffRequest({
          queue: "support",
          channel: "chat",
          summary: "Parcel never arrived",
          transcript: [["customer", "I want a person"]],
          reason: "explicit_request",
          timeoutSeconds: 300,
        }),
      );
      const conversation = baton.converse(handoff.id);
      const entries = conversation[Symbol.asyncIterator]();
      const next = async (): Promise<ChatUpdate> => {
        const result = await within("the next chat entry", entries.next());
        assert.ok(!result.done, "the conversation ended early");
        return result.value;
      };

      // The customer writes while waiting: the message comes back with its
      // sequence (stored).
      const first = conversation.send("my parcel never arrived");
      const mine = await next();
      assert.deepEqual(
        [mine.sequence, mine.kind, mine.author, mine.clientMessageId, mine.text],
        [1, "MESSAGE", "CUSTOMER", first, "my parcel never arrived"],
      );
      assert.equal(conversation.opened?.lastSequence, 0);

      // The stream breaks; the human accepts and answers meanwhile. The
      // conversation reopens after sequence 1: the answer arrives once.
      proxy.cut();
      await desk.accept(handoff.id);
      await desk.chatOpen(handoff.id);
      assert.equal(await desk.write(handoff.id, "a-1", "I see the order; checking the courier"), 204);
      const answer = await next();
      assert.deepEqual(
        [answer.sequence, answer.author, answer.clientMessageId, answer.text, answer.fromHuman],
        [2, "HUMAN", "a-1", "I see the order; checking the courier", true],
      );
      assert.ok(proxy.accepted >= 2, `${proxy.accepted} connections`);

      // A re-send with the same id is stored once.
      conversation.send("it was due on Monday", "c-2");
      conversation.send("it was due on Monday", "c-2");
      const again = await next();
      assert.deepEqual([again.sequence, again.author, again.clientMessageId], [3, "CUSTOMER", "c-2"]);

      // The human completes the contact: ENDED, and the iteration ends.
      assert.ok((await desk.wrapUp(handoff.id)) < 300);
      const ended = await next();
      assert.deepEqual([ended.sequence, ended.kind, ended.endReason, ended.ended], [4, "ENDED", "COMPLETED", true]);
      assert.ok((await within("the end of the iteration", entries.next())).done);
      assert.throws(() => conversation.send("hello?"), FailedPrecondition);

      // Reopened after the end: a typed refusal.
      const late = baton.converse(handoff.id, 4);
      await assert.rejects(within("the refusal", late[Symbol.asyncIterator]().next()), FailedPrecondition);
      // One that missed the end still gets it.
      const missed: ChatUpdate[] = [];
      for await (const entry of baton.converse(handoff.id, 3)) {
        missed.push(entry);
      }
      assert.deepEqual(
        missed.map((e) => [e.sequence, e.kind]),
        [[4, "ENDED"]],
      );
    } finally {
      baton.close();
      await proxy.close();
    }
  });
});
