/** The runtime's side of a chat handoff: ConverseHandoff as a send() and an async iterable. */

import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  ConverseHandoffRequestSchema,
  HandoffState,
  type ConverseHandoffRequest,
  type ConverseHandoffResponse,
  type ConverseOpened,
} from "./gen/baton/handoff/v1/handoff_pb.js";
import {
  ChatAuthor,
  ChatEndReason,
  ChatEntryKind,
  ChatMessageDraftSchema,
  type ChatEntry,
  type ChatMessageDraft,
} from "./gen/baton/type/v1/chat_pb.js";
import { BatonError, FailedPrecondition, Unavailable } from "./errors.js";

/**
 * One entry of a chat handoff's conversation log, as the runtime needs it:
 * a message of the customer (the runtime's own, coming back with its
 * sequence: it is stored), of the human, or the end of the conversation.
 */
export class ChatUpdate {
  readonly handoffId: string;
  /** 1, 2, 3… per handoff, without gaps. */
  readonly sequence: number;
  /** `MESSAGE` or `ENDED` (always the last). */
  readonly kind: string;
  /** Who wrote it: `CUSTOMER` (through the runtime), `HUMAN` or `SYSTEM` (the end). */
  readonly author: string;
  /** The name the human shows; empty otherwise. */
  readonly authorName: string;
  /** The writer's id of the message; empty on ENDED. */
  readonly clientMessageId: string;
  /** The message; on ENDED, why the conversation ended, for people. */
  readonly text: string;
  /** On ENDED: `COMPLETED`, `CANCELLED`, `FAILED` or `HANDED_BACK`; empty otherwise. */
  readonly endReason: string;
  /** The entry as the service sent it (attachments, create time). */
  readonly entry: ChatEntry;

  constructor(entry: ChatEntry) {
    this.handoffId = entry.handoffId;
    this.sequence = Number(entry.sequence);
    this.kind = ChatEntryKind[entry.kind] ?? String(entry.kind);
    this.author = ChatAuthor[entry.author] ?? String(entry.author);
    this.authorName = entry.authorName;
    this.clientMessageId = entry.clientMessageId;
    this.text = entry.text;
    this.endReason = entry.endReason === ChatEndReason.UNSPECIFIED ? "" : (ChatEndReason[entry.endReason] ?? "");
    this.entry = entry;
  }

  /** The conversation is over (the handoff ended); nothing follows. */
  get ended(): boolean {
    return this.entry.kind === ChatEntryKind.ENDED;
  }

  /** A message of the human. */
  get fromHuman(): boolean {
    return this.entry.author === ChatAuthor.HUMAN;
  }
}

/** Where the conversation stood when the stream was (last) opened. */
export interface ChatOpened {
  /** The handoff's state: `QUEUED`, `CONNECTED`, … */
  state: string;
  /** The sequence of the log's latest entry (0 when empty). */
  lastSequence: number;
  /** The latest sequence the human has read (0 when none). */
  humanReadThrough: number;
}

/** What a `Conversation` needs of the client: one stream, the retry policy. */
export interface ConverseTransport {
  open(requests: AsyncIterable<ConverseHandoffRequest>, signal: AbortSignal): AsyncIterable<ConverseHandoffResponse>;
  retries: number;
  backoffMs(attempt: number, retryAfter: number | undefined): number;
}

/**
 * One chat handoff's conversation, for the runtime that owns the customer's
 * channel (from `BatonClient.converse()`). `send()` a customer message;
 * iterate it for every entry after the sequence it was opened at, in order:
 * the customer's own messages (stored once they come back with a
 * sequence), the human's, and the ENDED entry, after which the iteration
 * ends. Iterating is what keeps the stream open: messages sent before are
 * sent once it opens. A broken stream is reopened after the last sequence
 * seen, and messages not yet seen back are sent again with their ids,
 * which the service stores once.
 */
export class Conversation implements AsyncIterable<ChatUpdate> {
  readonly handoffId: string;
  /** Where the conversation stood at the last (re)open; undefined before. */
  opened: ChatOpened | undefined;
  #after: bigint;
  readonly #transport: ConverseTransport;
  /** Sent and not yet seen back with a sequence, by client_message_id, in order. */
  readonly #unacknowledged = new Map<string, ChatMessageDraft>();
  #outbox: RequestQueue | undefined;
  #ended = false;
  #iterating = false;
  readonly #abort = new AbortController();

  constructor(transport: ConverseTransport, handoffId: string, afterSequence: bigint) {
    this.#transport = transport;
    this.handoffId = handoffId;
    this.#after = afterSequence;
  }

  /** The sequence of the last entry seen. */
  get lastSequence(): number {
    return Number(this.#after);
  }

  /**
   * Sends a message of the customer; returns its `clientMessageId` (made
   * when not given). The message is stored when it comes back in the
   * iteration with its sequence; until then it is sent again on every
   * reopen, and stored once. FailedPrecondition once the conversation ended.
   */
  send(text: string, clientMessageId: string = `ts-${randomUUID()}`): string {
    if (this.#ended) {
      throw new FailedPrecondition({
        code: Code.FailedPrecondition,
        reason: "HANDOFF_ENDED",
        message: "the conversation has ended",
      });
    }
    const draft = create(ChatMessageDraftSchema, { clientMessageId, text });
    this.#unacknowledged.set(clientMessageId, draft);
    this.#outbox?.push(messageRequest(draft));
    return clientMessageId;
  }

  /** Closes the stream; the iteration ends. */
  close(): void {
    this.#ended = true;
    this.#outbox?.end();
    this.#abort.abort();
  }

  [Symbol.asyncIterator](): AsyncGenerator<ChatUpdate, void, undefined> {
    if (this.#iterating) {
      throw new TypeError("a Conversation is iterated once");
    }
    this.#iterating = true;
    return this.#run();
  }

  async *#run(): AsyncGenerator<ChatUpdate, void, undefined> {
    let failures = 0;
    try {
      while (!this.#ended) {
        const outbox = new RequestQueue();
        outbox.push(
          create(ConverseHandoffRequestSchema, {
            kind: { case: "open", value: { handoffId: this.handoffId, afterSequence: this.#after } },
          }),
        );
        for (const draft of this.#unacknowledged.values()) {
          outbox.push(messageRequest(draft));
        }
        this.#outbox = outbox;
        let error: BatonError | undefined;
        try {
          for await (const response of this.#transport.open(outbox, this.#abort.signal)) {
            const kind = response.kind;
            if (kind.case === "opened") {
              this.opened = openedOf(kind.value);
              continue;
            }
            if (kind.case !== "entry" || kind.value.sequence <= this.#after) {
              continue; // typing and read hints, or an entry seen before
            }
            const entry = kind.value;
            this.#after = entry.sequence;
            failures = 0;
            if (entry.author === ChatAuthor.CUSTOMER) {
              this.#unacknowledged.delete(entry.clientMessageId);
            }
            const update = new ChatUpdate(entry);
            if (update.ended) {
              this.#ended = true;
            }
            yield update;
            if (update.ended) {
              return;
            }
          }
        } catch (thrown) {
          if (this.#abort.signal.aborted) {
            return;
          }
          error = BatonError.from(thrown);
          if (!resumable(error)) {
            throw error;
          }
        } finally {
          outbox.end();
          this.#outbox = undefined;
        }
        if (this.#abort.signal.aborted) {
          return;
        }
        failures += 1;
        if (failures > this.#transport.retries) {
          throw error ?? new Unavailable({ code: Code.Unavailable, message: "the conversation kept ending early" });
        }
        await new Promise((resolve) => setTimeout(resolve, this.#transport.backoffMs(failures, error?.retryAfter)));
      }
    } finally {
      this.#ended = true;
      this.#abort.abort();
    }
  }
}

function messageRequest(draft: ChatMessageDraft): ConverseHandoffRequest {
  return create(ConverseHandoffRequestSchema, { kind: { case: "message", value: draft } });
}

function openedOf(opened: ConverseOpened): ChatOpened {
  return {
    state: HandoffState[opened.state] ?? String(opened.state),
    lastSequence: Number(opened.lastSequence),
    humanReadThrough: Number(opened.humanReadThrough),
  };
}

/** As for a watch: what may be retried, and a stream the network cut mid-way. */
function resumable(error: BatonError): boolean {
  return error.retryable || (error.reason === "" && (error.code === Code.Internal || error.code === Code.Unknown));
}

/** The requests of one stream: pushed as they come, ended with the stream. */
class RequestQueue implements AsyncIterable<ConverseHandoffRequest> {
  readonly #items: ConverseHandoffRequest[] = [];
  #wake: (() => void) | undefined;
  #ended = false;

  push(item: ConverseHandoffRequest): void {
    if (!this.#ended) {
      this.#items.push(item);
      this.#wake?.();
    }
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ConverseHandoffRequest, void, undefined> {
    for (;;) {
      const item = this.#items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.#ended) {
        return;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }
}
