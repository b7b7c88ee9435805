"""The listening service: one asyncio loop from audio frames to spoken answers.

frames -> endpointer -> utterance -> transcript (Qwen2-Audio) -> activation -> route
    -> screen: screenshot + Qwen2-VL | voice: Qwen2-Audio voice chat with the conversation so far
    -> answer -> speech
Model calls run in worker threads, so capture never stalls; one request is answered at a time
and one failed request is reported and spoken as an apology while listening goes on.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..activation import Activation
from ..audio.endpointing import EndpointEvent, EndpointSettings
from ..audio.sources import Frame
from ..audio.vad import SAMPLE_RATE, Utterance, UtteranceCutter
from ..config import Settings
from ..routing import Route, mentions_screen
from .events import EventLog

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong with that request."
HISTORY_TURNS = 4


@dataclass
class Conversation:
    """Voice-chat turns kept for the follow-up questions: clips and answers."""

    clips: list[np.ndarray] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)

    def messages(self, new_clip_index: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, answer in enumerate(self.answers):
            out.append({"role": "user", "content": [{"type": "audio", "audio_url": f"clip-{i}"}]})
            out.append({"role": "assistant", "content": answer})
        out.append({"role": "user", "content": [{"type": "audio", "audio_url": f"clip-{new_clip_index}"}]})
        return out

    def remember(self, clip: np.ndarray, answer: str) -> None:
        self.clips.append(clip)
        self.answers.append(answer)
        del self.clips[:-HISTORY_TURNS], self.answers[:-HISTORY_TURNS]


class AssistantService:
    def __init__(self, settings: Settings, events: EventLog, audio_model, vl_model=None, speak: bool = True):
        self.settings = settings
        self.events = events
        self.audio_model = audio_model
        self.vl_model = vl_model
        self.speak_enabled = speak and settings.tts.enabled
        self.activation = Activation(
            settings.activation.mode, settings.activation.wake_phrases, settings.activation.follow_up_s
        )
        self.conversation = Conversation()
        self.stop_event = asyncio.Event()
        self.cancel = threading.Event()  # stops a generation between two tokens
        self._requests: asyncio.Queue[Utterance] = asyncio.Queue(maxsize=4)
        self.file_mode = False

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, frames: AsyncIterator[Frame], file_mode: bool, exit_at_end: bool) -> None:
        self.file_mode = file_mode
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        started = time.monotonic()
        self.clock = (lambda: 0.0) if file_mode else (lambda: time.monotonic() - started)
        worker = asyncio.create_task(self._answer_requests())
        self.events.emit("listening", 0.0)
        try:
            reader = asyncio.create_task(self._listen(frames))
            stop = asyncio.create_task(self.stop_event.wait())
            await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
            if reader.done() and not self.stop_event.is_set():
                reader.result()  # a source error surfaces here
                if exit_at_end:
                    await self._requests.join()
                else:
                    await stop
            reader.cancel()
            stop.cancel()
        finally:
            self.cancel.set()
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            self.events.emit("stopped", self._now())

    def stop(self) -> None:
        self.cancel.set()
        self.stop_event.set()

    def _now(self) -> float:
        return self.clock()

    async def _listen(self, frames: AsyncIterator[Frame]) -> None:
        cutter = UtteranceCutter(
            EndpointSettings.from_audio(self.settings.audio), self.settings.audio.vad_aggressiveness
        )
        async for frame in frames:
            if self.stop_event.is_set():
                return
            for item in cutter.feed(frame.samples):
                await self._on_endpoint(item)
        for item in cutter.flush():
            await self._on_endpoint(item)

    async def _on_endpoint(self, item: EndpointEvent | Utterance) -> None:
        if isinstance(item, Utterance):
            self.events.emit("speech_end", item.end, start=item.start, end=item.end, reason=item.reason)
            if self.file_mode:
                await self._requests.put(item)  # a file waits for the answers; nothing is dropped
                return
            try:
                self._requests.put_nowait(item)
            except asyncio.QueueFull:
                self.events.emit("error", self._now(), message="too many requests waiting; this one was dropped")
        elif item.kind == "speech_start":
            self.events.emit("speech_start", item.start)
        elif item.kind == "discarded":
            self.events.emit("speech_discarded", item.end or item.start, start=item.start, reason=item.reason)

    # -- requests ------------------------------------------------------------------------------

    async def _answer_requests(self) -> None:
        while True:
            utterance = await self._requests.get()
            try:
                await self._answer(utterance)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failed request must not end the service
                log.exception("request failed")
                t = utterance.end if self.file_mode else self._now()
                self.events.emit("error", t, message=f"{type(exc).__name__}: {exc}".splitlines()[0])
                await self._say(APOLOGY, t)
            finally:
                self._requests.task_done()

    async def _answer(self, utterance: Utterance) -> None:
        t = (lambda: utterance.end) if self.file_mode else self._now
        audio = utterance.audio.astype(np.float32) / 32768.0
        started = time.perf_counter()
        heard = await asyncio.to_thread(self.audio_model.transcribe, audio)
        self.events.emit(
            "transcript",
            t(),
            text=heard.text,
            language=heard.language,
            ms=round(1000 * (time.perf_counter() - started), 1),
        )
        decision = self.activation.decide(heard.text, at=utterance.start)
        if not decision.accepted:
            self.events.emit("ignored", t(), reason=decision.reason)
            return
        route = (
            Route.SCREEN if mentions_screen(decision.question, self.settings.routing.screen_phrases) else Route.VOICE
        )
        self.events.emit("route", t(), route=route.value, question=decision.question)
        started = time.perf_counter()
        if route is Route.SCREEN:
            answer = await asyncio.to_thread(self._screen_answer, decision.question)
        else:
            answer = await asyncio.to_thread(self._voice_answer, audio)
        self.events.emit("answer", t(), text=answer, ms=round(1000 * (time.perf_counter() - started), 1))
        await self._say(answer, t())
        self.activation.answered(at=utterance.end if self.file_mode else self._now())

    def _generation(self) -> dict[str, Any]:
        g = self.settings.generation
        return {"max_new_tokens": g.max_new_tokens, "cancel": self.cancel, **g.sampling()}

    def _voice_answer(self, audio: np.ndarray) -> str:
        pre = self.audio_model.preprocessor
        clips = [*self.conversation.clips, audio[: 30 * SAMPLE_RATE]]
        prompt = pre.apply_chat_template(self.conversation.messages(len(clips) - 1))
        inputs = pre(prompt, audio=clips)
        out = self.audio_model.generate(**inputs, **self._generation())
        answer = pre.decode(out[0, inputs["input_ids"].shape[1] :].tolist()).strip()
        self.conversation.remember(clips[-1], answer)
        return answer

    def _screen_answer(self, question: str) -> str:
        from ..screen.capture import capture_screen

        if self.vl_model is None:
            raise RuntimeError("the screen model is not loaded")
        shot = capture_screen(self.settings.screen.monitor)
        if self.settings.screen.save_dir is not None:
            self.settings.screen.save_dir.mkdir(parents=True, exist_ok=True)
            shot.save(self.settings.screen.save_dir / f"screen-{time.strftime('%Y%m%d-%H%M%S')}.png")
        pre = self.vl_model.preprocessor
        prompt = pre.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        )
        inputs = pre(prompt, images=[shot], max_pixels=self.settings.screen.max_pixels)
        out = self.vl_model.generate(**inputs, **self._generation())
        return pre.decode(out[0, inputs["input_ids"].shape[1] :].tolist()).strip()

    async def _say(self, text: str, t: float) -> None:
        if not self.speak_enabled or not text:
            return
        from ..speech.synthesis import Player, synthesize

        self.events.emit("speak_start", t, text=text)
        try:
            speech = await asyncio.to_thread(synthesize, text, self.settings.tts.voice, self.settings.tts.rate)
            await asyncio.to_thread(Player(self.settings.audio.output_device).play, speech)
        except Exception as exc:  # no speaker or no voice: say so, keep listening
            self.events.emit("error", t, message=f"could not speak: {exc}")
            return
        self.events.emit("speak_end", t)
