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
  QueueTargetSchema,
  Speaker,
  TargetSchema,
  TurnSchema,
  type Entity,
  type Target,
  type Turn as ProtoTurn,
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

/** The target of a handoff: exactly one of these. */
export interface TargetOptions {
  /** A queue of the contact center (the embedded queue's is `support`). */
  queue?: string;
  /** An external phone number (E.164). */
  phoneNumber?: string;
  /** A SIP URI. */
  sipUri?: string;
  /** A route named in the control service's configuration. */
  route?: string;
}

/** What `handoffRequest` takes: plain values for the common cases. */
export interface HandoffRequestOptions extends TargetOptions {
  summary: string;
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
  /** How long routing may try before giving up, in seconds (the service's default). */
  timeoutSeconds?: number;
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
  const { language = "en" } = options;
  return create(CreateHandoffRequestSchema, {
    requestId: options.requestId || newRequestId(),
    conversation: {
      channel: channelOf(options.channel ?? "voice"),
      language,
      call: options.sipCallId ? { sipCallId: options.sipCallId } : undefined,
    },
    context: {
      summary: options.summary,
      intent: options.intent ? { name: options.intent, confidence: options.intentConfidence ?? 0 } : undefined,
      entities: entitiesOf(options.entities, options.sensitiveEntities),
      transcript: transcriptOf(options.transcript ?? []),
      reason: reasonOf(options.reason),
    },
    target: targetOf(options),
    timeout: options.timeoutSeconds === undefined ? undefined : { seconds: BigInt(Math.floor(options.timeoutSeconds)) },
  });
}

/** The Target of exactly one of `queue`, `phoneNumber`, `sipUri` and `route`; else a TypeError. */
export function targetOf(options: TargetOptions): Target {
  const { queue = "", phoneNumber = "", sipUri = "", route = "" } = options;
  if ([queue, phoneNumber, sipUri, route].filter((target) => target !== "").length !== 1) {
    throw new TypeError("name exactly one target: queue, phoneNumber, sipUri or route");
  }
  const kind = queue
    ? { case: "queue" as const, value: create(QueueTargetSchema, { name: queue }) }
    : phoneNumber
      ? { case: "phoneNumber" as const, value: phoneNumber }
      : sipUri
        ? { case: "sipUri" as const, value: sipUri }
        : { case: "route" as const, value: route };
  return create(TargetSchema, { kind });
}

/** The Channel of `voice` or `chat`; else a TypeError. */
export function channelOf(channel: string): Channel {
  const value = CHANNELS[channel];
  if (value === undefined) {
    throw new TypeError(`channel must be one of ${Object.keys(CHANNELS).join(", ")}`);
  }
  return value;
}

/** Entities from plain name → value records, the sensitive ones marked. */
export function entitiesOf(
  plain: Readonly<Record<string, string>> = {},
  sensitive: Readonly<Record<string, string>> = {},
): Entity[] {
  const entities: Entity[] = [];
  for (const [values, isSensitive] of [
    [plain, false],
    [sensitive, true],
  ] as const) {
    for (const [name, value] of Object.entries(values)) {
      entities.push(create(EntitySchema, { name, value, sensitive: isSensitive }));
    }
  }
  return entities;
}

/** Transcript Turns from [speaker, text] pairs; a TypeError for an unknown speaker. */
export function transcriptOf(turns: Iterable<Turn>): ProtoTurn[] {
  return [...turns].map(([speaker, text]) => create(TurnSchema, { speaker: speakerOf(speaker), text }));
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
