"""The listening service: one asyncio loop from audio frames to spoken answers.

frames -> endpointer -> utterance -> transcript (Qwen2-Audio) -> activation -> route
    -> screen: screenshot + Qwen2-VL | voice: Qwen2-Audio voice chat with the conversation so far
    -> streamed tokens -> sentences -> speaker (its own thread, one sentence at a time)
tray / signals -> commands on the loop (mute, talk, ask about the screen, stop speaking, quit)

Model calls run in worker threads, so capture never stalls; one request is answered at a
time, and a failed request is reported and apologised for while listening goes on. While
the assistant speaks (plus a short tail) the microphone only listens for the wake phrase,
which interrupts the answer; anything else heard then is its own voice and is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..activation import Activation
from ..audio.endpointing import EndpointEvent, EndpointSettings
from ..audio.sources import Frame
from ..audio.vad import Utterance, UtteranceCutter
from ..config import Settings
from ..models.transcript import SAMPLE_RATE, Transcript, transcript_token_budget
from ..routing import Route, is_stop_command, mentions_screen
from ..speech.sentences import SentenceSplitter
from ..speech.speaker import Reply, ReplyCallbacks, Speaker
from .conversation import Conversation
from .events import EventLog
from .state import Activity

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong with that request."
NO_SCREEN = "Sorry, I cannot see the screen here."
SCREEN_QUESTION = "What is on my screen? Describe it briefly."
# Enough tokens for a language tag and a wake phrase: what is heard while speaking is checked for it only.
WAKE_CHECK_TOKENS = 16
# Speech heard before the head of an utterance is checked for a wake phrase, while the speaker goes on:
# speech not meant for the assistant then costs only that check. "Hey assistant" takes 0.7-0.9 s to say
# (a clipped last word still matches, the match is tolerant); every 0.1 s more costs the 7B 2.5 audio
# tokens of prefill.
HEAD_CHECK_S = 1.0


@dataclass
class Timings:
    ms: dict[str, float] = field(default_factory=dict)  # per-stage durations, reported with the answer
    marks: dict[str, float] = field(default_factory=dict)  # perf_counter() moments, for speech latency
    tokens: dict[str, int] = field(default_factory=dict)  # token counts of the stages, reported with the answer

    def model_call(self, stage: str, model: Any, called: float, inputs_ready: float) -> None:
        """A finished model call's stages: inputs (features, tokens), encoders, prefill, new tokens."""
        self.ms[f"{stage}_inputs"] = 1000 * (inputs_ready - called)
        stats = getattr(model, "last_stats", None)  # the engine's figures (fake models in tests have none)
        if stats is None:
            return
        self.ms[f"{stage}_encode"] = 1000 * stats.embed_s
        self.ms[f"{stage}_prefill"] = 1000 * (stats.prefill_s - stats.embed_s)
        self.ms[f"{stage}_tokens"] = 1000 * max(0.0, time.perf_counter() - inputs_ready - stats.prefill_s)
        self.tokens.update(
            {
                f"{stage}_prompt": stats.prompt_tokens,
                f"{stage}_reused": stats.reused_tokens,
                f"{stage}_new": stats.new_tokens,
            }
        )


@dataclass
class HeadCheck:
    """What the head of an utterance says, heard while the utterance went on (see HEAD_CHECK_S)."""

    transcript: Transcript
    timings: Timings
    seconds: float  # of speech checked


@dataclass
class Request:
    kind: Literal["speech", "screen"]
    utterance: Utterance | None = None
    endpoint_at: float = 0.0  # perf_counter when the endpointer ended the utterance
    while_speaking: bool = False  # heard while the assistant spoke: only a wake phrase counts
    head_check: asyncio.Task | None = None  # the check of its head, started before it ended


class AssistantService:
    def __init__(
        self,
        settings: Settings,
        events: EventLog,
        audio_model,
        vl_model=None,
        speaker: Speaker | None = None,
        on_state: Callable[[Activity], None] | None = None,
    ):
        self.settings = settings
        self.events = events
        self.audio_model = audio_model
        self.vl_model = vl_model
        self.speaker = speaker
        self.on_state = on_state
        self.activation = Activation(
            settings.activation.mode, settings.activation.wake_phrases, settings.activation.follow_up_s
        )
        self.conversation = Conversation()
        self.activity = Activity()
        self.stop_event = asyncio.Event()
        self.cancel = threading.Event()  # stops the current generation between two tokens
        self._requests: asyncio.Queue[Request] = asyncio.Queue(maxsize=4)
        self._heard_while_speaking = False
        # Time of the utterance clock (the cutter's: frames heard, as utterances are dated) at the latest
        # frame: when a push happened.
        self._heard_until = float("-inf")
        self._head_check: tuple[float, asyncio.Task] | None = None  # (utterance start, its head check)
        self._model_threads: set[threading.Thread] = set()
        self.file_mode = False
        self.clock: Callable[[], float] = lambda: 0.0

    # -- commands (tray, signals); called on the loop ------------------------------------------

    def stop(self) -> None:
        self.cancel.set()
        self.stop_event.set()

    def set_muted(self, muted: bool) -> None:
        if muted != self.activity.muted:
            self._update(muted=muted, hearing=False)
            self.events.emit("muted" if muted else "unmuted", self.clock())

    def toggle_mute(self) -> None:
        self.set_muted(not self.activity.muted)

    def talk(self) -> None:
        """Push-to-talk: the next utterance is a request whatever the mode."""
        self.activation.push_to_talk(at=self._heard_until)
        self.events.emit("push_to_talk", self.clock())

    def ask_screen(self) -> None:
        """Ask Qwen2-VL about the screen now, without a spoken question."""
        self._enqueue(Request("screen", endpoint_at=time.perf_counter()))

    def stop_speaking(self) -> None:
        self.cancel.set()  # the rest of the answer is not wanted either
        if self.speaker is not None and self.speaker.stop():
            self.events.emit("speak_stopped", self.clock())

    def model_threads_running(self) -> bool:
        return any(t.is_alive() for t in self._model_threads)

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, frames: AsyncIterator[Frame], file_mode: bool, exit_at_end: bool) -> None:
        self.file_mode = file_mode
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGTERM: self.stop, signal.SIGINT: self.stop, signal.SIGUSR1: self.talk}
        handlers[signal.SIGUSR2] = self.stop_speaking
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
        started = time.monotonic()
        self.clock = (lambda: 0.0) if file_mode else (lambda: time.monotonic() - started)
        worker = asyncio.create_task(self._answer_requests())
        self.events.emit("listening", 0.0)
        self._publish()
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
            await asyncio.gather(reader, return_exceptions=True)
        finally:
            self.cancel.set()
            if self.speaker is not None:
                self.speaker.stop()
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            for sig in handlers:
                loop.remove_signal_handler(sig)
            self.events.emit("stopped", self.clock())

    def _listen_gate(self) -> bool:
        """The microphone hears the assistant's own voice now (files never do)."""
        return not self.file_mode and self.speaker is not None and self.speaker.busy()

    async def _listen(self, frames: AsyncIterator[Frame]) -> None:
        cutter = UtteranceCutter(
            EndpointSettings.from_audio(self.settings.audio), self.settings.audio.vad_aggressiveness
        )
        async for frame in frames:
            if self.stop_event.is_set():
                return
            if self.activity.muted:
                cutter.skip()
                continue
            for item in cutter.feed(frame.samples):
                await self._on_endpoint(item)
            self._heard_until = cutter.t
            self._maybe_check_head(cutter)
        for item in cutter.flush():
            await self._on_endpoint(item)

    async def _on_endpoint(self, item: EndpointEvent | Utterance) -> None:
        if isinstance(item, Utterance):
            self._update(hearing=False)
            while_speaking = self._heard_while_speaking or self._listen_gate()
            fields = {"start": item.start, "end": item.end, "reason": item.reason, "while_speaking": while_speaking}
            self.events.emit("speech_end", item.end, **fields)
            request = Request("speech", item, time.perf_counter(), while_speaking)
            if self._head_check is not None and self._head_check[0] == item.start:
                request.head_check = self._head_check[1]
            self._head_check = None
            if self.file_mode:
                await self._requests.put(request)  # a file waits for the answers; nothing is dropped
            else:
                self._enqueue(request)
        elif item.kind == "speech_start":
            self._heard_while_speaking = self._listen_gate()
            self._update(hearing=True)
            self.events.emit("speech_start", item.start)
        elif item.kind == "discarded":
            self._update(hearing=False)
            self.events.emit("speech_discarded", item.end or item.start, start=item.start, reason=item.reason)

    def _maybe_check_head(self, cutter: UtteranceCutter) -> None:
        """Start checking the head of the utterance in progress for a wake phrase, once HEAD_CHECK_S of it
        has been heard, when only a wake phrase would make it a request and no model is busy (live input
        only). By its end the check is usually done: speech not meant for the assistant then costs no
        transcript at all, and a request goes on as usual."""
        if self.file_mode or self.activity.thinking or not self._requests.empty() or self._listen_gate():
            return
        so_far = cutter.speech_so_far()
        if so_far is None or (self._head_check is not None and self._head_check[0] == so_far[0]):
            return
        start, audio = so_far
        if cutter.t - start < HEAD_CHECK_S or not self.activation.only_wake_phrase_counts(start):
            return
        clip = audio.astype(np.float32) / 32768.0
        self._head_check = (start, asyncio.create_task(self._in_thread(self._check_head, clip, cutter.t - start)))

    def _enqueue(self, request: Request) -> None:
        try:
            self._requests.put_nowait(request)
        except asyncio.QueueFull:
            self.events.emit("error", self.clock(), message="too many requests waiting; this one was dropped")

    # -- state ---------------------------------------------------------------------------------

    def _update(self, **changes: bool) -> None:
        before = self.activity.state
        self.activity = self.activity.with_(**changes)
        if self.activity.state != before:
            self._publish()

    def _publish(self) -> None:
        self.events.emit("state", self.clock(), state=self.activity.state.value)
        if self.on_state is not None:
            self.on_state(self.activity)

    def microphone_lost(self, message: str) -> None:
        self.events.emit("error", self.clock(), message=message)
        self._update(microphone_lost=True, hearing=False)

    def microphone_back(self) -> None:
        if self.activity.microphone_lost:
            self.events.emit("microphone_back", self.clock())
            self._update(microphone_lost=False)

    # -- requests ------------------------------------------------------------------------------

    async def _answer_requests(self) -> None:
        if self.settings.runtime.warm_up:
            try:
                ms, released = await self._in_thread(self._warm_up)
                self.events.emit("warmed_up", self.clock(), ms=round(ms, 1), released_bytes=released)
            except Exception as exc:  # a failed warm-up only costs the first answer some speed
                log.warning("warm-up failed: %s", exc)
        while True:
            request = await self._requests.get()
            at = self._request_time(request)
            try:
                self.cancel = threading.Event()
                self._update(thinking=True)
                await self._answer(request, at)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failed request must not end the service
                from ..screen.capture import ScreenCaptureUnavailable

                log.exception("request failed")
                self.events.emit("error", at(), message=f"{type(exc).__name__}: {exc}".splitlines()[0])
                await self._say_only(NO_SCREEN if isinstance(exc, ScreenCaptureUnavailable) else APOLOGY, at)
            finally:
                self._update(thinking=False)
                self._requests.task_done()
            if not self.settings.runtime.warm_up:  # the first requests are the ones that pack the weights
                await self._in_thread(self._release_mapped_weights)

    def _request_time(self, request: Request) -> Callable[[], float]:
        if self.file_mode and request.utterance is not None:
            end = request.utterance.end
            return lambda: end  # events of a file's request carry its position in the file
        return self.clock

    async def _answer(self, request: Request, at: Callable[[], float]) -> None:
        timings = Timings()
        if request.kind == "screen":
            question, route, clip = SCREEN_QUESTION, Route.SCREEN, None
        else:
            heard = await self._hear(request, timings, at)
            if heard is None:
                return
            question, clip = heard
            screen = mentions_screen(question, self.settings.routing.screen_phrases)
            route = Route.SCREEN if screen else Route.VOICE
        self.events.emit("route", at(), route=route.value, question=question)
        timings.marks["end_of_speech"] = request.endpoint_at
        reply = self._begin_reply(at, timings)
        started = time.perf_counter()
        if "transcribed" in timings.marks:
            timings.ms["routing"] = 1000 * (started - timings.marks["transcribed"])
        try:
            if route is Route.SCREEN:
                answer = await self._in_thread(self._screen_answer, question, reply, timings, at)
            else:
                answer = await self._in_thread(self._voice_answer, clip, reply, timings)
        finally:
            if reply is not None:
                reply.close()
        timings.ms["answer"] = 1000 * (time.perf_counter() - started)
        self.events.emit(
            "answer",
            at(),
            text=answer,
            timings={k: round(v, 1) for k, v in timings.ms.items()},
            tokens=timings.tokens,
        )
        if reply is None:
            self.activation.answered(at=at())
        elif self.file_mode:
            await asyncio.to_thread(reply.finished.wait)

    async def _hear(self, request: Request, timings: Timings, at: Callable[[], float]) -> tuple[str, np.ndarray] | None:
        """Transcribe, then decide whether this is a request; (question, clip) or None when not."""
        utterance = request.utterance
        assert utterance is not None
        if await self._head_says_not_addressed(request, at):
            return None
        clip = utterance.audio.astype(np.float32) / 32768.0
        budget = transcript_token_budget(len(clip) / SAMPLE_RATE)
        limit = min(WAKE_CHECK_TOKENS, budget) if request.while_speaking else budget
        # Speech not meant for the assistant costs only the tokens that show it does not start with a wake phrase.
        only_wake = self.activation.only_wake_phrase_counts(utterance.start, request.while_speaking)
        keep_going = self.activation.may_be_addressed if only_wake else None
        heard = await self._in_thread(self._transcribe, clip, limit, request.endpoint_at, timings, keep_going)
        self._transcript_event(at, heard, timings)
        decision = self.activation.decide(heard.text, at=utterance.start)
        if request.while_speaking:
            if decision.reason != "wake_phrase":
                self.events.emit("ignored", at(), reason="heard while speaking")
                return None
            self.stop_speaking()  # a new wake phrase interrupts the answer being spoken
            self.cancel = threading.Event()
            heard = await self._in_thread(self._transcribe, clip, budget, request.endpoint_at, Timings())
            decision = self.activation.decide(heard.text, at=utterance.start)
        if not decision.accepted:
            self.events.emit("ignored", at(), reason=decision.reason)
            return None
        if is_stop_command(decision.question):
            self.stop_speaking()
            self.events.emit("ignored", at(), reason="stop command")
            return None
        return decision.question, clip

    async def _head_says_not_addressed(self, request: Request, at: Callable[[], float]) -> bool:
        """The utterance's head check found it cannot start with a wake phrase, and nothing since (a push,
        a follow-up window) made it a request: it is ignored without a transcript of its own."""
        if request.head_check is None:
            return False
        try:
            head: HeadCheck = await request.head_check
        except Exception as exc:  # the check only saves work: without it the utterance is transcribed
            log.warning("checking the head of an utterance failed: %s", exc)
            return False
        assert request.utterance is not None
        if not head.transcript.stopped_early:
            return False
        if not self.activation.only_wake_phrase_counts(request.utterance.start, request.while_speaking):
            return False
        self._transcript_event(at, head.transcript, head.timings, head_s=round(head.seconds, 2))
        self.events.emit("ignored", at(), reason="no wake phrase")
        return True

    def _transcript_event(self, at: Callable[[], float], heard: Transcript, timings: Timings, **extra: Any) -> None:
        self.events.emit(
            "transcript",
            at(),
            text=heard.text,
            language=heard.language,
            ms=round(timings.ms["transcribe"], 1),
            cpu_ms=round(timings.ms["transcript_cpu"], 1),
            tokens=heard.tokens,
            stopped_early=heard.stopped_early,
            **extra,
        )

    # -- model calls (worker threads) ----------------------------------------------------------

    def _check_head(self, clip: np.ndarray, seconds: float) -> HeadCheck:
        timings = Timings()
        keep_going = self.activation.may_be_addressed
        heard = self._transcribe(clip, WAKE_CHECK_TOKENS, time.perf_counter(), timings, keep_going)
        return HeadCheck(heard, timings, seconds)

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a model call in a daemon thread: shutting down never waits for a long prefill."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def work() -> None:
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the loop, raised there
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)

        thread = threading.Thread(target=work, name="model-call", daemon=True)
        self._model_threads = {t for t in self._model_threads if t.is_alive()} | {thread}
        thread.start()
        return await future

    def _warm_up(self) -> tuple[float, int]:
        """Run each model once (ms), then release the mapped weights files (bytes)."""
        from ..models.warmup import warm_up_audio, warm_up_vision

        started = time.perf_counter()
        warm_up_audio(self.audio_model)
        if self.vl_model is not None:
            warm_up_vision(self.vl_model, self.settings.screen.max_pixels, SCREEN_QUESTION)
        if self.speaker is not None:
            self.speaker.warm_up()
        ms = 1000 * (time.perf_counter() - started)
        return ms, self._release_mapped_weights()

    def _release_mapped_weights(self) -> int:
        """Once every sub-model has run, its weights are in the CPU plugin's own memory: the mapped files'
        pages are a second copy (see models/mapped_weights.py)."""
        from ..models.mapped_weights import release_mapped_weights

        folders = [getattr(m, "model_dir", None) for m in (self.audio_model, self.vl_model)]
        folders.append(self.settings.runtime.cache_dir)
        return release_mapped_weights([Path(f) for f in folders if f is not None])

    def _transcribe(
        self,
        clip: np.ndarray,
        limit: int,
        endpoint_at: float,
        timings: Timings,
        keep_going: Callable[[str], bool] | None = None,
    ):
        called, cpu = time.perf_counter(), time.process_time()
        timings.ms["end_to_model_call"] = 1000 * (called - endpoint_at)
        inputs = self.conversation.transcription_inputs(self.audio_model.preprocessor, clip)
        ready = time.perf_counter()
        heard = self.audio_model.transcribe_prompt(inputs, max_new_tokens=limit, keep_going=keep_going)
        timings.model_call("transcript", self.audio_model, called, ready)
        timings.marks["transcribed"] = time.perf_counter()
        timings.ms["transcribe"] = 1000 * (timings.marks["transcribed"] - called)
        # CPU of the whole process (OpenVINO's worker threads too): what hearing this utterance cost.
        timings.ms["transcript_cpu"] = 1000 * (time.process_time() - cpu)
        return heard

    def _generation(self) -> dict[str, Any]:
        g = self.settings.generation
        return {"max_new_tokens": g.max_new_tokens, "cancel": self.cancel, **g.sampling_options()}

    def _stream(self, model, inputs: dict[str, Any], reply: Reply | None, timings: Timings, called: float) -> str:
        """Generate, handing each finished sentence to the voice while the rest is still written.

        `called` is when the answer's model call began (before its inputs were prepared).
        """
        from ..models.preprocess import StreamDecoder

        pre = model.preprocessor
        decoder = StreamDecoder(pre.tokenizer, eager=True)  # a sentence's period is spoken without delay
        splitter = SentenceSplitter()
        stops = model.stop_ids()
        started = time.perf_counter()
        pieces: list[str] = []
        count = 0

        def say(sentences: list[str]) -> None:
            if sentences and "first_sentence" not in timings.ms:
                timings.ms["first_sentence"] = 1000 * (time.perf_counter() - started)
                timings.marks["first_sentence"] = time.perf_counter()
                timings.tokens["answer_to_first_sentence"] = count
            for sentence in sentences:
                if reply is not None:
                    reply.say(sentence)

        def on_token(token: int) -> None:
            nonlocal count
            count += 1
            if "first_token" not in timings.ms:
                timings.ms["first_token"] = 1000 * (time.perf_counter() - started)
                timings.marks["first_token"] = time.perf_counter()
            if token in stops:
                return
            text = decoder.put(token)
            pieces.append(text)
            say(splitter.feed(text))

        model.generate(**inputs, on_token=on_token, **self._generation())
        timings.model_call("answer", model, called, started)
        rest = decoder.end()
        pieces.append(rest)
        say(splitter.feed(rest) + splitter.flush())
        return "".join(pieces).strip()

    def _voice_answer(self, clip: np.ndarray, reply: Reply | None, timings: Timings) -> str:
        called = time.perf_counter()
        inputs = self.conversation.voice_inputs(self.audio_model.preprocessor, clip)
        answer = self._stream(self.audio_model, inputs, reply, timings, called)
        self.conversation.remember(clip, answer)
        return answer

    def _screen_answer(self, question: str, reply: Reply | None, timings: Timings, at: Callable[[], float]) -> str:
        from ..models.qwen2vl import vision_prompt
        from ..screen.capture import capture_screen

        if self.vl_model is None:
            raise RuntimeError("the screen model is not loaded; convert it with `assistant convert vl`")
        started = time.perf_counter()
        shot = capture_screen(self.settings.screen.monitor)
        timings.ms["screenshot"] = 1000 * (time.perf_counter() - started)
        self.events.emit("screenshot", at(), width=shot.width, height=shot.height)
        if self.settings.screen.save_dir is not None:
            self.settings.screen.save_dir.mkdir(parents=True, exist_ok=True)
            shot.save(self.settings.screen.save_dir / f"screen-{time.strftime('%Y%m%d-%H%M%S')}.png")
        called = time.perf_counter()
        inputs = vision_prompt(self.vl_model.preprocessor, question, [shot], max_pixels=self.settings.screen.max_pixels)
        return self._stream(self.vl_model, inputs, reply, timings, called)

    # -- speaking ------------------------------------------------------------------------------

    def _begin_reply(self, at: Callable[[], float], timings: Timings) -> Reply | None:
        """A reply on the speaker whose start and end become events (None when not speaking)."""
        if self.speaker is None:
            return None
        loop = asyncio.get_running_loop()

        def started(first_audio_at: float, synthesis_s: float) -> None:
            fields: dict[str, Any] = {"synthesis_ms": round(1000 * synthesis_s, 1)}
            for mark in ("end_of_speech", "first_token", "first_sentence"):
                if mark in timings.marks:
                    fields[f"after_{mark}_ms"] = round(1000 * (first_audio_at - timings.marks[mark]), 1)
            self.events.emit("speak_start", at(), **fields)
            self._update(speaking=True)

        def ended(interrupted: bool, error: str | None) -> None:
            if error is not None:
                self.events.emit("error", at(), message=f"could not speak: {error}")
            self.events.emit("speak_end", at(), interrupted=interrupted)
            self._update(speaking=self.speaker is not None and self.speaker.speaking)
            self.activation.answered(at=at())

        return self.speaker.begin(
            ReplyCallbacks(
                on_start=lambda t, synthesis_s: _post(loop, started, t, synthesis_s),
                on_end=lambda interrupted, error: _post(loop, ended, interrupted, error),
            )
        )

    async def _say_only(self, text: str, at: Callable[[], float]) -> None:
        reply = self._begin_reply(at, Timings())
        if reply is None:
            return
        reply.say(text)
        reply.close()
        if self.file_mode:
            await asyncio.to_thread(reply.finished.wait)


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    """Run `fn(*args)` on the loop from the speaker thread; once the loop has closed (the service stopped
    while a reply was being cut off) there is nobody left to tell."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
