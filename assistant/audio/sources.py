"""Where 30 ms frames of 16 kHz mono int16 audio come from: a file, or the microphone.

The microphone's callback runs on PortAudio's thread; frames cross into the asyncio loop
with `call_soon_threadsafe` into a bounded queue that drops the oldest frames (and says so)
when the loop falls behind, so capture never blocks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .devices import AudioUnavailable, find_device, list_audio_devices, load_sounddevice
from .vad import FRAME_SAMPLES, SAMPLE_RATE, frames_of

log = logging.getLogger(__name__)

FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE


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


class MicrophoneSource:
    """The configured (or the desktop's default) input device, opened at 16 kHz mono int16."""

    def __init__(self, device: str | int = "", max_queued_s: float = 10.0):
        self.device = device
        self.max_frames = int(max_queued_s / FRAME_SECONDS)
        self.queue: DropOldestQueue | None = None
        self._stream = None

    def resolve_device(self) -> int | None:
        if self.device == "":
            return None  # PortAudio's default follows the desktop's choice (pulse/pipewire)
        found = find_device(list_audio_devices(), self.device, kind="input")
        if found is None:
            raise AudioUnavailable(f"no microphone matches {self.device!r}; see `assistant devices`")
        return found.index

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        sd = load_sounddevice()
        self.queue = DropOldestQueue(self.max_frames)
        queue = self.queue
        count = 0

        def callback(indata, frames, time_info, status) -> None:  # PortAudio's thread
            nonlocal count
            if status:
                log.debug("microphone status: %s", status)
            frame = Frame(np.frombuffer(bytes(indata), dtype=np.int16).copy(), count * FRAME_SECONDS)
            count += 1
            loop.call_soon_threadsafe(queue.put, frame)

        try:
            self._stream = sd.RawInputStream(
                samplerate=SAMPLE_RATE,
                channels=1,
                dtype="int16",
                blocksize=FRAME_SAMPLES,
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
        if self.queue is None:
            self.open(asyncio.get_running_loop())
        try:
            while True:
                yield await self.queue.get()
        finally:
            self.close()
