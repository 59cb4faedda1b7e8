/** The client: Baton's handoff API, with retries, resumable watches and typed errors. */

import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { create } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { Code } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  CancelHandoffRequestSchema,
  CheckAvailabilityRequestSchema,
  EvaluateEscalationRequestSchema,
  GetHandoffRequestSchema,
  HandoffService,
  RecordOutcomeRequestSchema,
  UpdateHandoffRequestSchema,
  WatchHandoffRequestSchema,
  type CheckAvailabilityResponse,
  type CreateHandoffRequest,
  type EscalationDecision,
  type Handoff,
  type TargetAttempt,
} from "./gen/baton/handoff/v1/handoff_pb.js";
import type { Availability } from "./gen/baton/type/v1/availability_pb.js";
import { Judgement } from "./gen/baton/type/v1/handoff_context_pb.js";
import { Conversation } from "./converse.js";
import { BatonError, Unavailable } from "./errors.js";
import {
  HandoffUpdate,
  channelOf,
  entitiesOf,
  newRequestId,
  targetOf,
  transcriptOf,
  turnsForEvaluation,
  watchIsOver,
  type TargetOptions,
  type Turn,
} from "./updates.js";

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

/**
 * What `checkAvailability()` asks about: the target (exactly one of
 * `queue`, `phoneNumber`, `sipUri` or `route`) and what chooses its route.
 */
export interface AvailabilityOptions extends TargetOptions {
  /** The conversation's language (BCP 47), `en` by default: the message is in it. */
  language?: string;
  /** The intent routes match; may be empty. */
  intent?: string;
  /** `voice` (default) or `chat`: a chat shares its human with other chats. */
  channel?: "voice" | "chat";
}

/** Whether a handoff would reach a human now, by business hours. */
export interface AvailabilityAnswer {
  /** A target of the plan is open now. */
  open: boolean;
  /** What the AI tells the customer now: "connecting you" when open, when it opens again when closed. */
  customerMessage: string;
  /** The language of `customerMessage` (BCP 47). */
  customerMessageLanguage: string;
  /** When open: when the target that would take the handoff closes; undefined without hours. */
  closesAt: Date | undefined;
  /** When closed: the earliest next opening; undefined when none within a year. */
  opensAt: Date | undefined;
  /** The IANA time zone of the schedule that decided; empty without one. */
  timeZone: string;
  /** How many targets of the plan are closed now. */
  closedTargets: number;
  /** When open: the target that would take the handoff first. */
  target: TargetAttempt | undefined;
  /** When open: the target tried next if that one did not take it. */
  fallback: TargetAttempt | undefined;
  /** When open: who is there at `target` now, when its connector reports it. */
  availability: Availability | undefined;
  /** The answer as the service sent it. */
  response: CheckAvailabilityResponse;
}

/** What `update()` adds to a waiting handoff's context. */
export interface UpdateOptions {
  /**
   * The context version the update was made against (`Handoff.contextVersion`
   * as last read, or the `contextVersion` the last `update()` returned).
   */
  contextVersion: number | bigint;
  /** Turns to append to the transcript, in order. */
  turns?: Iterable<Turn>;
  /** Entities to add; one named like an existing entity replaces it (a correction). */
  entities?: Readonly<Record<string, string>>;
  /** Entities masked for the human unless revealed. */
  sensitiveEntities?: Readonly<Record<string, string>>;
  /** Notes appended to the context's agent notes, on a line of their own. */
  notes?: string;
  /** The idempotency key; left empty, one is made (and kept across the retries). */
  requestId?: string;
}

/** What `update()` answers. */
export interface UpdateResult {
  /** The handoff after the update (on an idempotent retry, as it is now). */
  handoff: Handoff;
  /** False when this `requestId` had already applied the update. */
  applied: boolean;
  /** The context version the update produced: name it in the next `update()`. */
  contextVersion: number;
  /** The request id used, made when not given. */
  requestId: string;
}

/** The human's judgements of a handoff, for `recordOutcome()`; at least one. */
export interface OutcomeOptions {
  /** The context was enough to help without asking the customer again. */
  contextSufficient?: boolean;
  /** The customer had to repeat something they had told the AI. */
  customerRepeated?: boolean;
  /** The customer needed a human at all. */
  escalationNeeded?: boolean;
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

  /**
   * Whether a handoff to this target would reach a human now, by business
   * hours: ask before promising the customer a human, and say
   * `customerMessage` (when it opens again, when closed). A dry run of
   * routing: nothing is created, and an open target may still have nobody
   * free. Retried after a transient failure (it changes nothing).
   */
  async checkAvailability(options: AvailabilityOptions): Promise<AvailabilityAnswer> {
    const request = create(CheckAvailabilityRequestSchema, {
      target: targetOf(options),
      language: options.language ?? "en",
      intent: options.intent ?? "",
      channel: channelOf(options.channel ?? "voice"),
    });
    const response = await this.#call(() => this.#service.checkAvailability(request, { timeoutMs: this.timeoutMs }));
    return {
      open: response.open,
      customerMessage: response.customerMessage,
      customerMessageLanguage: response.customerMessageLanguage,
      closesAt: response.closesAt ? timestampDate(response.closesAt) : undefined,
      opensAt: response.opensAt ? timestampDate(response.opensAt) : undefined,
      timeZone: response.timeZone,
      closedTargets: response.closedTargets,
      target: response.target,
      fallback: response.fallback,
      availability: response.availability,
      response,
    };
  }

  /**
   * Adds what the customer tells the AI while waiting (turns, entities,
   * notes) to the context of a handoff no human has yet (pending, routing,
   * queued or ringing), so the human does not ask again. Optimistic
   * concurrency: name the `contextVersion` last read (1 as created, then
   * what each `update()` returns); a stale one is a
   * `ContextVersionConflict` with `currentVersion`. Idempotent by
   * `requestId` (made when empty), so a transient failure is retried with
   * the same id and applied once. Once a human has the customer or the
   * handoff ended: FailedPrecondition.
   */
  async update(handoffId: string, options: UpdateOptions): Promise<UpdateResult> {
    const requestId = options.requestId || newRequestId();
    const request = create(UpdateHandoffRequestSchema, {
      handoffId,
      requestId,
      expectedContextVersion: BigInt(options.contextVersion),
      turns: transcriptOf(options.turns ?? []),
      entities: entitiesOf(options.entities, options.sensitiveEntities),
      notes: options.notes ?? "",
    });
    const response = await this.#call(() => this.#service.updateHandoff(request, { timeoutMs: this.timeoutMs }));
    return {
      handoff: response.handoff ?? missing("UpdateHandoffResponse.handoff"),
      applied: response.applied,
      contextVersion: Number(response.contextVersion),
      requestId,
    };
  }

  /**
   * The conversation of a chat handoff (created with `channel: "chat"`),
   * for the runtime that owns the customer's channel: call it right after
   * creating the handoff and relay both ways while the customer waits and
   * talks to the human. `send(text)` a customer message; iterate for every
   * entry after `afterSequence` (the customer's own messages come back
   * with their sequence once stored, then the human's), until the ENDED
   * entry when the handoff ends. A broken stream is reopened after the
   * last sequence seen, and unacknowledged messages are re-sent with their
   * ids (stored once). `close()` when the customer leaves.
   */
  converse(handoffId: string, afterSequence: number | bigint = 0): Conversation {
    return new Conversation(
      {
        open: (requests, signal) => this.#service.converseHandoff(requests, { signal }),
        retries: this.retries,
        backoffMs,
      },
      handoffId,
      BigInt(afterSequence),
    );
  }

  /**
   * Records how a handoff went, as the human judged it, when Baton cannot
   * ask them at wrap-up (a phone number, a SIP phone): after the handoff
   * reached a human and ended (COMPLETED or HANDED_BACK), else
   * FailedPrecondition. Recorded once: the same judgements again answer
   * the stored outcome, different ones are a `Conflict`.
   */
  async recordOutcome(handoffId: string, outcome: OutcomeOptions): Promise<Handoff> {
    const request = create(RecordOutcomeRequestSchema, {
      handoffId,
      contextSufficient: judgementOf(outcome.contextSufficient),
      customerRepeated: judgementOf(outcome.customerRepeated),
      escalationNeeded: judgementOf(outcome.escalationNeeded),
    });
    const response = await this.#call(() => this.#service.recordOutcome(request, { timeoutMs: this.timeoutMs }));
    return response.handoff ?? missing("RecordOutcomeResponse.handoff");
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

function judgementOf(value: boolean | undefined): Judgement {
  return value === undefined ? Judgement.UNSPECIFIED : value ? Judgement.YES : Judgement.NO;
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
