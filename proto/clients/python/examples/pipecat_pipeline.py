"""Baton in a Pipecat pipeline: a FrameProcessor between the STT and the
LLM's context aggregator.

Each final transcription (a customer turn) goes to Baton's escalation policy
before the LLM sees it. When Baton says escalate, the turn is not forwarded
(the LLM must not answer it as well) and a `TTSSpeakFrame` with Baton's
phrase goes down to the TTS instead. When a human has the customer the
pipeline is ended (`EndWorkerFrame`): the AI leaves the call; when the
handoff fails the AI apologises and carries on.

    pipeline = Pipeline([transport.input(), stt, BatonEscalationProcessor(guard),
                         user_aggregator, llm, tts, transport.output(), assistant_aggregator])

Run it for real: see README.md (`python pipecat_pipeline.py`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from baton_escalation import EscalationGuard, Outcome
from pipecat.frames.frames import (
    EndWorkerFrame,
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from baton_client import AsyncClient


class BatonEscalationProcessor(FrameProcessor):
    """Watches customer turns (TranscriptionFrame) and, after the LLM, the
    AI's replies (LLMTextFrame…LLMFullResponseEndFrame) for the transcript.
    Place one after the STT; optionally a second, with the same guard, after
    the LLM so Baton also sees the AI's side."""

    def __init__(self, guard: EscalationGuard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.guard = guard
        # The guard reports the outcome from its own task; frames are pushed
        # from there, which Pipecat allows.
        guard.on_outcome = self._on_outcome
        self._ai_text: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame) and direction == FrameDirection.DOWNSTREAM:
            if self.guard.human_connected:
                return  # a human has the customer: the AI does not answer
            say = await self.guard.customer_turn(frame.text)
            if say:
                # Instead of the LLM's answer: Baton's phrase, spoken whole.
                await self.push_frame(TTSSpeakFrame(say, append_to_context=True), direction)
                return
        elif isinstance(frame, LLMFullResponseStartFrame):
            self._ai_text = []
        elif isinstance(frame, LLMTextFrame):
            self._ai_text.append(frame.text)
        elif isinstance(frame, LLMFullResponseEndFrame) and self._ai_text:
            await self.push_frame(frame, direction)
            say = await self.guard.ai_turn("".join(self._ai_text))
            self._ai_text = []
            if say:
                await self.push_frame(TTSSpeakFrame(say), direction)
            return
        await self.push_frame(frame, direction)

    async def _on_outcome(self, outcome: Outcome) -> None:
        if outcome.connected:
            # The human has the customer; the AI leaves, its queued speech
            # flushed first.
            await self.push_frame(EndWorkerFrame(reason="handed to a human"), FrameDirection.UPSTREAM)
        else:
            await self.push_frame(TTSSpeakFrame(outcome.say))


async def main() -> None:  # pragma: no cover - needs a Daily room and API keys
    """A Daily-transport bot: Deepgram STT, OpenAI LLM, Cartesia TTS, with
    Baton between the STT and the LLM. See README.md for the environment."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.services.cartesia.tts import CartesiaTTSService
    from pipecat.services.deepgram.stt import DeepgramSTTService
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.transports.daily.transport import DailyParams, DailyTransport
    from pipecat.workers.runner import WorkerRunner

    transport = DailyTransport(
        os.environ["DAILY_ROOM_URL"],
        os.environ.get("DAILY_TOKEN"),
        "Support bot",
        DailyParams(audio_in_enabled=True, audio_out_enabled=True),
    )
    stt = DeepgramSTTService(api_key=os.environ["DEEPGRAM_API_KEY"])
    llm = OpenAILLMService(api_key=os.environ["OPENAI_API_KEY"], model="gpt-4o-mini")
    tts = CartesiaTTSService(api_key=os.environ["CARTESIA_API_KEY"], voice_id=os.environ["CARTESIA_VOICE_ID"])
    context = LLMContext([{"role": "system", "content": "You are a helpful support agent. Be brief."}])
    aggregators = LLMContextAggregatorPair(context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer()))

    async with AsyncClient(os.environ.get("BATON_ADDR", "127.0.0.1:50051"), credential=os.environ["BATON_API_KEY"]) as client:
        guard = EscalationGuard(client, os.environ.get("CONVERSATION_ID", "pipecat-demo"), queue="support")
        pipeline = Pipeline(
            [
                transport.input(),
                stt,
                BatonEscalationProcessor(guard),
                aggregators.user(),
                llm,
                tts,
                transport.output(),
                aggregators.assistant(),
            ]
        )
        await WorkerRunner().run(PipelineWorker(pipeline))
        await guard.close()


if __name__ == "__main__":
    asyncio.run(main())
