"""Where 30 ms frames of 16 kHz mono int16 audio come from: a file, or the microphone.

The microphone's callback runs on PortAudio's thread; frames cross into the asyncio loop
with `call_soon_threadsafe` into a bounded queue that drops the oldest frames (and says so)
when the loop falls behind, so capture never blocks. A microphone that stops delivering
(unplugged, the sound server restarted) is reopened with exponential backoff, and the
service is told when it is lost and when it is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .devices import AudioUnavailable, find_device, list_audio_devices, load_sounddevice
from .vad import FRAME_SAMPLES, SAMPLE_RATE, frames_of

log = logging.getLogger(__name__)

FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
# The microphone delivers 3 frames (90 ms) per callback: a wake-up every 30 ms cost ~1.6% of a core
# while idle (PortAudio's thread and the loop), every 90 ms ~0.4%; end of speech is seen <= 60 ms later.
FRAMES_PER_BLOCK = 3


@dataclass(frozen=True)
class Frame:
    samples: np.ndarray  # int16 [480]
    t: float  # seconds since the source started (file position for files)


class DropOldestQueue:
    """asyncio queue of bounded size where a full queue drops its oldest item, not the new one."""

    def __init__(self, maxsize: int):
        self._queue: asyncio.Queue = asyncio.Queue(maxsize)
        self.dropped = 0

    def put(self, item) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("audio frames dropped: the assistant is falling behind (%d so far)", self.dropped)
        self._queue.put_nowait(item)

    def put_all(self, items) -> None:
        for item in items:
            self.put(item)

    async def get(self):
        return await self._queue.get()


class FileSource:
    """A sound file (any rate and channel count) as frames; `realtime` paces them like a microphone."""

    def __init__(self, path: Path, realtime: bool = False):
        from ..models.preprocess import load_audio

        self.path = Path(path)
        self.audio = load_audio(self.path)  # 16 kHz mono float32; clear error for bad files
        self.realtime = realtime

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    async def frames(self) -> AsyncIterator[Frame]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i, samples in enumerate(frames_of(self.audio)):
            t = i * FRAME_SECONDS
            if self.realtime:
                await asyncio.sleep(max(0.0, started + t - loop.time()))
            elif i % 64 == 0:
                await asyncio.sleep(0)  # let the rest of the loop run
            yield Frame(samples, t)


class Backoff:
    """Waits between reopening attempts: first, doubling up to `longest` (pure)."""

    def __init__(self, first: float = 1.0, longest: float = 30.0):
        self.first, self.longest = first, longest
        self._next = first

    def next(self) -> float:
        wait, self._next = self._next, min(self._next * 2, self.longest)
        return wait

    def reset(self) -> None:
        self._next = self.first


class MicrophoneSource:
    """The configured (or the desktop's default) input device, opened at 16 kHz mono int16.

    Opening fails at once with a clear error; a microphone lost later is retried with
    backoff while `on_lost(message)` / `on_back()` keep the service informed.
    """

    # No frame for this long from an open stream means the device is gone (frames come every 30 ms).
    STALL_S = 3.0

    def __init__(
        self,
        device: str | int = "",
        max_queued_s: float = 10.0,
        on_lost: Callable[[str], None] | None = None,
        on_back: Callable[[], None] | None = None,
        backoff: Backoff | None = None,
    ):
        self.device = device
        self.max_frames = int(max_queued_s / FRAME_SECONDS)
        self.queue: DropOldestQueue | None = None
        self._stream = None
        self.on_lost = on_lost or (lambda message: None)
        self.on_back = on_back or (lambda: None)
        self.backoff = backoff or Backoff()
        self._count = 0

    def resolve_device(self) -> int | None:
        if self.device == "":
            return None  # PortAudio's default follows the desktop's choice (pulse/pipewire)
        found = find_device(list_audio_devices(), self.device, kind="input")
        if found is None:
            raise AudioUnavailable(f"no microphone matches {self.device!r}; see `assistant devices`")
        return found.index

    def check(self) -> None:
        """Fail now, with a clear line, when the device cannot record 16 kHz mono (before models load)."""
        sd = load_sounddevice()
        device = self.resolve_device()
        try:
            sd.check_input_settings(device=device, channels=1, dtype="int16", samplerate=SAMPLE_RATE)
        except Exception as exc:  # PortAudio reports every failure as a plain error
            raise AudioUnavailable(f"cannot use the microphone ({exc}); check `assistant devices`") from None

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        sd = load_sounddevice()
        self.queue = DropOldestQueue(self.max_frames)
        queue = self.queue

        def callback(indata, frames, time_info, status) -> None:  # PortAudio's thread
            if status:
                log.debug("microphone status: %s", status)
            samples = np.frombuffer(bytes(indata), dtype=np.int16)
            block = []
            for start in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
                block.append(Frame(samples[start : start + FRAME_SAMPLES].copy(), self._count * FRAME_SECONDS))
                self._count += 1
            loop.call_soon_threadsafe(queue.put_all, block)

        try:
            self._stream = sd.RawInputStream(
                samplerate=SAMPLE_RATE,
                channels=1,
                dtype="int16",
                blocksize=FRAMES_PER_BLOCK * FRAME_SAMPLES,
                device=self.resolve_device(),
                callback=callback,
            )
            self._stream.start()
        except AudioUnavailable:
            raise
        except Exception as exc:  # PortAudio reports every failure as a plain error
            raise AudioUnavailable(f"cannot open the microphone ({exc}); check `assistant devices`") from None

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None

    async def frames(self) -> AsyncIterator[Frame]:
        loop = asyncio.get_running_loop()
        if self.queue is None:
            self.open(loop)
        try:
            while True:
                try:
                    yield await asyncio.wait_for(self.queue.get(), self.STALL_S)
                    continue
                except TimeoutError:
                    self.close()
                    self.on_lost("the microphone stopped sending audio; trying to reopen it")
                await self._reopen(loop)
        finally:
            self.close()

    async def _reopen(self, loop: asyncio.AbstractEventLoop) -> None:
        self.backoff.reset()
        while True:
            wait = self.backoff.next()
            log.info("microphone: trying again in %g s", wait)
            await asyncio.sleep(wait)
            try:
                self._reset_portaudio()
                self.open(loop)
            except AudioUnavailable as exc:
                log.warning("microphone still unavailable: %s", exc)
                continue
            log.info("microphone is back")
            self.on_back()
            return

    @staticmethod
    def _reset_portaudio() -> None:
        """PortAudio lists devices once per initialisation; a new or restarted device needs a fresh one."""
        sd = load_sounddevice()
        try:
            sd._terminate()
            sd._initialize()
        except Exception as exc:  # private API: if it changes, reopening still works for the same device
            log.debug("could not reinitialise PortAudio: %s", exc)
