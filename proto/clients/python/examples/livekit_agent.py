"""Baton in a LiveKit Agents (v1.x) voice agent.

`on_user_turn_completed` runs after the customer finished speaking and before
the LLM answers: the turn goes to Baton's escalation policy first. When Baton
says escalate, the agent says Baton's phrase and raises `StopResponse`, so the
LLM does not answer that turn too. Once a human has the customer the agent
goes quiet (every later turn is stopped); if the handoff fails it apologises
and carries on.

Run it for real: see README.md (`python livekit_agent.py dev`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Set

from baton_escalation import EscalationGuard, Outcome
from livekit.agents import Agent, AgentServer, AgentSession, ConversationItemAddedEvent, JobContext, cli, llm

from baton_client import AsyncClient


class BatonAgent(Agent):
    def __init__(self, guard: EscalationGuard, instructions: str = "You are a helpful support agent. Be brief.") -> None:
        super().__init__(instructions=instructions)
        self.guard = guard
        guard.on_outcome = self._on_outcome

    async def on_user_turn_completed(self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage) -> None:
        if self.guard.human_connected:
            raise llm.StopResponse()  # a human has the customer: the AI stays silent
        say = await self.guard.customer_turn(new_message.text_content or "")
        if say:
            # Baton's phrase instead of the LLM's answer; not interruptible,
            # the customer must hear that a person is coming.
            self.session.say(say, allow_interruptions=False)
            raise llm.StopResponse()

    async def _on_outcome(self, outcome: Outcome) -> None:
        if outcome.connected:
            # Whatever the AI was saying, it stops: the human talks now.
            self.session.interrupt(force=True)
        else:
            self.session.say(outcome.say)


def record_ai_turns(session: AgentSession[None], guard: EscalationGuard) -> None:
    """Gives Baton the AI's side of the conversation (the transcript, and the
    policy's count of the AI's failures: repeated ones escalate too)."""
    pending: Set["asyncio.Task[None]"] = set()

    async def evaluate(text: str) -> None:
        say = await guard.ai_turn(text)
        if say:
            session.say(say, allow_interruptions=False)

    def added(event: ConversationItemAddedEvent) -> None:
        item = event.item
        if isinstance(item, llm.ChatMessage) and item.role == "assistant" and item.text_content:
            # Event handlers are synchronous: evaluate in the background,
            # holding the task so it is not collected half-way.
            task = asyncio.create_task(evaluate(item.text_content))
            pending.add(task)
            task.add_done_callback(pending.discard)

    session.on("conversation_item_added", added)


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:  # pragma: no cover - needs a LiveKit server
    # Models through LiveKit Inference (LiveKit Cloud); pass plugin objects
    # (livekit-plugins-openai, …) to use your own keys instead.
    session: AgentSession[None] = AgentSession(stt="deepgram/nova-3", llm="openai/gpt-4.1-mini", tts="cartesia/sonic-2")
    client = AsyncClient(os.environ.get("BATON_ADDR", "127.0.0.1:50051"), credential=os.environ["BATON_API_KEY"])
    guard = EscalationGuard(client, ctx.room.name, queue=os.environ.get("BATON_QUEUE", "support"))
    record_ai_turns(session, guard)

    async def shutdown() -> None:
        await guard.close()
        await client.close()

    ctx.add_shutdown_callback(shutdown)
    await session.start(agent=BatonAgent(guard), room=ctx.room)


if __name__ == "__main__":
    cli.run_app(server)
