/**
 * Baton's TypeScript client: hand a live customer from an AI agent to a
 * human, with the context, and follow the handoff until a human has them.
 *
 * ```ts
 * import { BatonClient, handoffRequest } from "@baton/client";
 *
 * const baton = new BatonClient("127.0.0.1:50051", { credential: process.env.BATON_API_KEY });
 * const decision = await baton.evaluate("call-42", [["customer", "I want to talk to a person"]]);
 * if (decision.escalate) {
 *   const request = handoffRequest({ queue: "support", summary: "Charged twice for March", reason: decision });
 *   for await (const update of baton.handoff(request)) {
 *     if (update.say) speak(update.say);
 *   }
 * }
 * baton.close();
 * ```
 *
 * The generated messages are `handoffV1` and `typesV1`.
 */

export {
  BatonClient,
  backoffMs,
  type AvailabilityAnswer,
  type AvailabilityOptions,
  type ClientOptions,
  type EvaluateOptions,
  type OutcomeOptions,
  type Tls,
  type UpdateOptions,
  type UpdateResult,
} from "./client.js";
export { ChatUpdate, Conversation, type ChatOpened } from "./converse.js";
export {
  BatonError,
  Conflict,
  ContextVersionConflict,
  FailedPrecondition,
  InvalidArgument,
  NotFound,
  PermissionDenied,
  ResourceExhausted,
  Unauthenticated,
  Unavailable,
  type BatonErrorInit,
  type FieldViolation,
} from "./errors.js";
export {
  HandoffUpdate,
  TERMINAL_STATES,
  handoffRequest,
  newRequestId,
  type HandoffRequestOptions,
  type TargetOptions,
  type Turn,
} from "./updates.js";
export * as handoffV1 from "./gen/baton/handoff/v1/handoff_pb.js";
export * as typesV1 from "./gen/baton/type/v1/handoff_context_pb.js";
export { Code } from "@connectrpc/connect";
