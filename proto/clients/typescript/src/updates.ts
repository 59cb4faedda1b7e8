/** What a runtime follows: one typed update per handoff event. */

import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import {
  CreateHandoffRequestSchema,
  EvaluatedTurnSchema,
  HandoffEventKind,
  HandoffState,
  type CreateHandoffRequest,
  type EscalationDecision,
  type EvaluatedTurn,
  type Handoff,
  type HandoffEvent,
} from "./gen/baton/handoff/v1/handoff_pb.js";
import {
  Channel,
  EntitySchema,
  EscalationKind,
  FailureReason,
  Speaker,
  TurnSchema,
  type Entity,
} from "./gen/baton/type/v1/handoff_context_pb.js";

/** The states after which nothing more happens to a handoff. */
export const TERMINAL_STATES: ReadonlySet<string> = new Set(["COMPLETED", "FAILED", "CANCELLED", "HANDED_BACK"]);

/** A transcript turn: [speaker, text], speaker `customer`, `ai` or `human`. */
export type Turn = readonly [speaker: "customer" | "ai" | "human", text: string];

/**
 * One step of a handoff, as the runtime needs it.
 *
 * `say` is what the AI tells the customer now, in the conversation's
 * language: set on the first update (the handoff was stored and a human is
 * being found: "I'm connecting you with a specialist…", with the wait when the
 * queue reports one). Other updates leave it empty; the runtime keeps the line
 * warm in its own words and uses `queuePosition`, `estimatedWaitSeconds` and
 * `failureReason` to say more.
 */
export class HandoffUpdate {
  readonly handoffId: string;
  readonly sequence: number;
  /** The event, without its prefix: `CREATED`, `QUEUED`, `CONNECTED`, … */
  readonly kind: string;
  /** The handoff's state after the event: `ROUTING`, `QUEUED`, … */
  readonly state: string;
  /** The event as the service sent it. */
  readonly event: HandoffEvent;
  /** The phrase for the customer, on the first (CREATED) update. */
  readonly say: string;
  /** The language of `say` (BCP 47). */
  readonly sayLanguage: string;

  private constructor(event: HandoffEvent, say: string, sayLanguage: string) {
    this.handoffId = event.handoffId;
    this.sequence = Number(event.sequence);
    this.kind = HandoffEventKind[event.kind] ?? String(event.kind);
    this.state = HandoffState[event.state] ?? String(event.state);
    this.event = event;
    this.say = say;
    this.sayLanguage = sayLanguage;
  }

  /**
   * The update of `event`; `handoff`, the handoff as created, gives the
   * CREATED update its phrase.
   */
  static of(event: HandoffEvent, handoff?: Handoff): HandoffUpdate {
    if (handoff !== undefined && event.kind === HandoffEventKind.CREATED) {
      return new HandoffUpdate(event, handoff.customerMessage, handoff.customerMessageLanguage);
    }
    return new HandoffUpdate(event, "", "");
  }

  /**
   * Nothing more will happen: completed, failed, cancelled or handed back (the
   * runtime owns the conversation again).
   */
  get terminal(): boolean {
    return TERMINAL_STATES.has(this.state);
  }

  /** A human has the customer. */
  get connected(): boolean {
    return this.state === "CONNECTED";
  }

  /** The customer's place in line, on QUEUED. */
  get queuePosition(): number | undefined {
    return this.event.queueStatus?.position;
  }

  /** The queue's estimate of the wait, on QUEUED when it gives one. */
  get estimatedWaitSeconds(): number | undefined {
    const wait = this.event.queueStatus?.estimatedWait;
    return wait === undefined ? undefined : Number(wait.seconds) + wait.nanos / 1e9;
  }

  /**
   * Why a target or the handoff failed (`NO_AGENTS`, `NO_ANSWER`, …), on
   * TARGET_FAILED, FAILED and CANCELLED; empty otherwise.
   */
  get failureReason(): string {
    const failure = this.event.failure;
    return failure === undefined ? "" : (FailureReason[failure.reason] ?? String(failure.reason));
  }
}

/**
 * Whether `handoff` has ended and a watcher that saw event `after` has seen
 * its last event.
 */
export function watchIsOver(handoff: Handoff, after: bigint): boolean {
  return TERMINAL_STATES.has(HandoffState[handoff.state] ?? "") && handoff.lastSequence <= after;
}

const SPEAKERS: Readonly<Record<string, Speaker>> = {
  customer: Speaker.CUSTOMER,
  ai: Speaker.AI,
  human: Speaker.HUMAN,
};
const CHANNELS: Readonly<Record<string, Channel>> = { voice: Channel.VOICE, chat: Channel.CHAT };

/** What `handoffRequest` takes: plain values for the common cases. */
export interface HandoffRequestOptions {
  summary: string;
  /** Exactly one of `queue`, `phoneNumber` (E.164) or `sipUri` names the target. */
  queue?: string;
  phoneNumber?: string;
  sipUri?: string;
  /** `voice` (default) or `chat`. */
  channel?: "voice" | "chat";
  /** The conversation's language (BCP 47), `en` by default. */
  language?: string;
  intent?: string;
  intentConfidence?: number;
  entities?: Readonly<Record<string, string>>;
  /** Entities masked for the human unless revealed (an account number, …). */
  sensitiveEntities?: Readonly<Record<string, string>>;
  transcript?: Iterable<Turn>;
  /**
   * An escalation kind (`explicit_request`, `distress`, …) or the decision
   * `evaluate()` returned, whose first trigger is the reason.
   */
  reason?: string | EscalationDecision;
  sipCallId?: string;
  /** The idempotency key; left empty, one is made. */
  requestId?: string;
}

/**
 * A CreateHandoffRequest from plain values, for the common cases; build the
 * message yourself (`create(CreateHandoffRequestSchema, …)`) for the rest
 * (callbacks, attended transfers, notes). Throws a `TypeError` for what it
 * cannot send.
 */
export function handoffRequest(options: HandoffRequestOptions): CreateHandoffRequest {
  const { queue = "", phoneNumber = "", sipUri = "", channel = "voice", language = "en" } = options;
  if ([queue, phoneNumber, sipUri].filter((target) => target !== "").length !== 1) {
    throw new TypeError("name exactly one target: queue, phoneNumber or sipUri");
  }
  const channelValue = CHANNELS[channel];
  if (channelValue === undefined) {
    throw new TypeError(`channel must be one of ${Object.keys(CHANNELS).join(", ")}`);
  }
  const entities: Entity[] = [];
  for (const [values, sensitive] of [
    [options.entities ?? {}, false],
    [options.sensitiveEntities ?? {}, true],
  ] as const) {
    for (const [name, value] of Object.entries(values)) {
      entities.push(create(EntitySchema, { name, value, sensitive }));
    }
  }
  const transcript = [...(options.transcript ?? [])].map(([speaker, text]) =>
    create(TurnSchema, { speaker: speakerOf(speaker), text }),
  );
  const target = queue
    ? { kind: { case: "queue" as const, value: { name: queue } } }
    : phoneNumber
      ? { kind: { case: "phoneNumber" as const, value: phoneNumber } }
      : { kind: { case: "sipUri" as const, value: sipUri } };
  return create(CreateHandoffRequestSchema, {
    requestId: options.requestId || newRequestId(),
    conversation: {
      channel: channelValue,
      language,
      call: options.sipCallId ? { sipCallId: options.sipCallId } : undefined,
    },
    context: {
      summary: options.summary,
      intent: options.intent ? { name: options.intent, confidence: options.intentConfidence ?? 0 } : undefined,
      entities,
      transcript,
      reason: reasonOf(options.reason),
    },
    target,
  });
}

function reasonOf(reason: string | EscalationDecision | undefined): { kind: EscalationKind; detail: string } | undefined {
  if (reason === undefined) {
    return undefined;
  }
  if (typeof reason === "string") {
    const kind = (EscalationKind as unknown as Record<string, EscalationKind | undefined>)[reason.toUpperCase()];
    if (kind === undefined || kind === EscalationKind.UNSPECIFIED) {
      throw new TypeError(`unknown escalation kind ${JSON.stringify(reason)}`);
    }
    return { kind, detail: "" };
  }
  const fired = reason.fired[0];
  return fired === undefined ? undefined : { kind: fired.kind, detail: fired.evidence };
}

function speakerOf(speaker: string): Speaker {
  const value = SPEAKERS[speaker];
  if (value === undefined) {
    throw new TypeError(
      `a turn's speaker must be one of ${Object.keys(SPEAKERS).join(", ")}, not ${JSON.stringify(speaker)}`,
    );
  }
  return value;
}

/** EvaluatedTurns from [speaker, text] pairs. */
export function turnsForEvaluation(turns: Iterable<Turn>): EvaluatedTurn[] {
  return [...turns].map(([speaker, text]) => create(EvaluatedTurnSchema, { speaker: speakerOf(speaker), text }));
}

/** A fresh idempotency key. */
export function newRequestId(): string {
  return `ts-${randomUUID()}`;
}
