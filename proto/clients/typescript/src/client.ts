/** The client: Baton's handoff API, with retries, resumable watches and typed errors. */

import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { create } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { Code } from "@connectrpc/connect";
import {
  CancelHandoffRequestSchema,
  EvaluateEscalationRequestSchema,
  GetHandoffRequestSchema,
  HandoffService,
  WatchHandoffRequestSchema,
  type CreateHandoffRequest,
  type EscalationDecision,
  type Handoff,
} from "./gen/baton/handoff/v1/handoff_pb.js";
import { BatonError, Unavailable } from "./errors.js";
import { HandoffUpdate, newRequestId, turnsForEvaluation, watchIsOver, type Turn } from "./updates.js";

/**
 * TLS to the control service. `ca` (PEM, or `caFile`, its path) verifies it
 * (default: Node's roots); `cert` and `key` (PEM) are the client
 * certificate, for a service that requires one.
 */
export interface Tls {
  ca?: string | Uint8Array;
  caFile?: string;
  cert?: string | Uint8Array;
  key?: string | Uint8Array;
  /** The name to verify, when it is not the target's host. */
  serverName?: string;
}

export interface ClientOptions {
  /**
   * An API key (`bk_…`) or a bearer token (JWT); sent as
   * `authorization: Bearer …`, never logged nor put in an error.
   */
  credential?: string;
  /** TLS to the service; `true` verifies it with Node's roots. Plain HTTP/2 without. */
  tls?: Tls | boolean;
  /** Deadline of each unary call, in milliseconds (10 s). */
  timeoutMs?: number;
  /**
   * How many times a call that failed for a transient reason is tried again
   * (with the same request id for CreateHandoff), and how many times in a row
   * a broken watch is resumed (5).
   */
  retries?: number;
}

/** What `evaluate()` takes besides the conversation and its turns. */
export interface EvaluateOptions {
  /** The conversation's language (BCP 47), for the customer message. */
  language?: string;
  /** `turns` is the whole conversation so far, not only the new turns. */
  wholeConversation?: boolean;
}

/** Milliseconds before try `attempt` (1, 2, …): what the service asked for, else 200 ms doubling up to 5 s. */
export function backoffMs(attempt: number, retryAfter: number | undefined): number {
  if (retryAfter !== undefined) {
    return Math.min(retryAfter, 30) * 1000;
  }
  return Math.min(200 * 2 ** (attempt - 1), 5000);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Baton's handoff API (`baton.handoff.v1.HandoffService`) over gRPC.
 * Call `close()` when done.
 *
 * ```ts
 * const baton = new BatonClient("127.0.0.1:50051", { credential: process.env.BATON_API_KEY });
 * for await (const update of baton.handoff(handoffRequest({ queue: "support", summary: "…" }))) {
 *   if (update.say) speak(update.say);
 * }
 * ```
 */
export class BatonClient {
  readonly target: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly #tls: boolean;
  readonly #sessions: Http2SessionManager;
  readonly #service: Client<typeof HandoffService>;

  constructor(target: string, options: ClientOptions = {}) {
    this.target = target;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retries = options.retries ?? 5;
    const tls = options.tls === true ? {} : options.tls || undefined;
    this.#tls = tls !== undefined;
    const baseUrl = /^https?:\/\//.test(target) ? target : `${tls ? "https" : "http"}://${target}`;
    const nodeOptions = tls
      ? {
          ca: tls.caFile !== undefined ? readFileSync(tls.caFile) : toBuffer(tls.ca),
          cert: toBuffer(tls.cert),
          key: toBuffer(tls.key),
          servername: tls.serverName,
        }
      : {};
    this.#sessions = new Http2SessionManager(baseUrl, {}, nodeOptions);
    const credential = options.credential;
    // The credential lives only in this closure: not a property of the
    // client, so neither `inspect()` nor an error can show it.
    const authorize: Interceptor = (next) => async (request) => {
      if (credential) {
        request.header.set("authorization", `Bearer ${credential}`);
      }
      return next(request);
    };
    const transport = createGrpcTransport({
      baseUrl,
      sessionManager: this.#sessions,
      interceptors: [authorize],
    });
    this.#service = createClient(HandoffService, transport);
  }

  /** Closes the connection; calls in flight fail. */
  close(): void {
    this.#sessions.abort();
  }

  toString(): string {
    return `BatonClient(target=${this.target}, tls=${this.#tls}, timeoutMs=${this.timeoutMs})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  /**
   * Whether to hand the conversation to a human now, and why: the escalation
   * policy over the new `turns` ([speaker, text] pairs) of `conversationId`.
   * The policy keeps the conversation's state between calls (repeated AI
   * failures count); `wholeConversation` says `turns` is everything so far.
   * Not retried after a transient failure (the first call may have counted
   * the turns); a rate limit's refusal is.
   */
  async evaluate(conversationId: string, turns: Iterable<Turn>, options: EvaluateOptions = {}): Promise<EscalationDecision> {
    const request = create(EvaluateEscalationRequestSchema, {
      conversationId,
      wholeConversation: options.wholeConversation ?? false,
      language: options.language ?? "",
      turns: turnsForEvaluation(turns),
    });
    const response = await this.#call(
      () => this.#service.evaluateEscalation(request, { timeoutMs: this.timeoutMs }),
      false,
    );
    return response.decision ?? missing("EvaluateEscalationResponse.decision");
  }

  /**
   * Creates the handoff, or returns the one this `requestId` already created
   * (`created: false`). An empty `requestId` is filled in first (on
   * `request` itself), so the retries after a transient failure can never
   * create two.
   */
  async create(request: CreateHandoffRequest): Promise<{ handoff: Handoff; created: boolean }> {
    if (!request.requestId) {
      request.requestId = newRequestId();
    }
    const response = await this.#call(() => this.#service.createHandoff(request, { timeoutMs: this.timeoutMs }));
    return { handoff: response.handoff ?? missing("CreateHandoffResponse.handoff"), created: response.created };
  }

  async get(handoffId: string): Promise<Handoff> {
    const request = create(GetHandoffRequestSchema, { handoffId });
    const response = await this.#call(() => this.#service.getHandoff(request, { timeoutMs: this.timeoutMs }));
    return response.handoff ?? missing("GetHandoffResponse.handoff");
  }

  /**
   * Cancels a handoff no human has yet; cancelling a cancelled one answers
   * it again. FailedPrecondition (`HANDOFF_ENDED`, `CALLBACK_DIALING`) once
   * it is too late.
   */
  async cancel(handoffId: string, reason = ""): Promise<Handoff> {
    const request = create(CancelHandoffRequestSchema, { handoffId, reason });
    const response = await this.#call(() => this.#service.cancelHandoff(request, { timeoutMs: this.timeoutMs }));
    return response.handoff ?? missing("CancelHandoffResponse.handoff");
  }

  /**
   * The handoff's events after `afterSequence`, until it ends. A broken
   * stream is reopened after the last event seen: nothing is missed or
   * repeated.
   */
  watch(handoffId: string, afterSequence: number | bigint = 0): AsyncGenerator<HandoffUpdate, void, undefined> {
    return this.#watch(handoffId, BigInt(afterSequence), undefined);
  }

  /**
   * Creates the handoff (idempotently) and follows it to its end. The first
   * update (CREATED) carries `say`, the phrase for the customer.
   */
  async *handoff(request: CreateHandoffRequest): AsyncGenerator<HandoffUpdate, void, undefined> {
    const { handoff } = await this.create(request);
    yield* this.#watch(handoff.id, 0n, handoff);
  }

  async *#watch(handoffId: string, after: bigint, created: Handoff | undefined): AsyncGenerator<HandoffUpdate, void, undefined> {
    let failures = 0;
    for (;;) {
      const request = create(WatchHandoffRequestSchema, { handoffId, afterSequence: after });
      let error: BatonError | undefined;
      try {
        for await (const response of this.#service.watchHandoff(request)) {
          const event = response.event;
          if (event === undefined || event.sequence <= after) {
            continue;
          }
          after = event.sequence;
          failures = 0;
          const update = HandoffUpdate.of(event, created);
          yield update;
          if (update.terminal) {
            return;
          }
        }
      } catch (thrown) {
        error = BatonError.from(thrown);
        if (!resumable(error)) {
          throw error;
        }
      }
      if (error === undefined && watchIsOver(await this.get(handoffId), after)) {
        // The stream ended cleanly after the last event: the handoff had
        // already ended when the watch began.
        return;
      }
      failures += 1;
      if (failures > this.retries) {
        throw error ?? new Unavailable({ code: Code.Unavailable, message: "the watch kept ending early" });
      }
      await sleep(backoffMs(failures, error?.retryAfter));
    }
  }

  async #call<T>(call: () => Promise<T>, idempotent = true): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (thrown) {
        const error = BatonError.from(thrown);
        if (!error.mayRetry(idempotent) || attempt > this.retries) {
          throw error;
        }
        await sleep(backoffMs(attempt, error.retryAfter));
      }
    }
  }
}

/**
 * Whether a watch that failed so may be reopened: what any call may retry,
 * and a stream the network cut mid-way (which the transport may report as
 * INTERNAL or UNKNOWN, the trailers lost): the watch is read-only.
 */
function resumable(error: BatonError): boolean {
  return error.retryable || (error.reason === "" && (error.code === Code.Internal || error.code === Code.Unknown));
}

function toBuffer(value: string | Uint8Array | undefined): Buffer | undefined {
  if (value === undefined) {
    return undefined;
  }
  return typeof value === "string" ? Buffer.from(value) : Buffer.from(value);
}

function missing(field: string): never {
  throw new BatonError({ code: Code.Internal, message: `the service's answer has no ${field}` });
}
