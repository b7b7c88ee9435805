"""The voice of the service: replies spoken sentence by sentence in one thread, stoppable.

A reply is opened when an answer starts streaming, gets sentences while the model still
writes, and is closed at the end. The speaker thread synthesises and plays one sentence
at a time, so the first sentence is heard while later ones are being written. `stop()`
cuts the sound mid-sentence and drops what was queued. `busy()` says whether the
microphone should be ignored: while speaking and for a short tail after, so the
assistant never answers its own voice.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .synthesis import Speech

log = logging.getLogger(__name__)

_END = object()
_SHUTDOWN = object()


@dataclass
class ReplyCallbacks:
    """Called on the speaker thread: the first sound (its moment and how long its sentence took to synthesise),
    and the end (interrupted or not, error or None)."""

    on_start: Callable[[float, float], None] = lambda first_audio_at, synthesis_s: None
    on_end: Callable[[bool, str | None], None] = lambda interrupted, error: None


@dataclass
class Reply:
    callbacks: ReplyCallbacks
    speaker: Speaker
    cancelled: bool = False
    started: bool = False
    closed: bool = False
    finished: threading.Event = field(default_factory=threading.Event)
    error: str | None = None

    def say(self, sentence: str) -> None:
        if not self.closed:
            self.speaker._queue.put((self, sentence))

    def close(self) -> None:
        """No more sentences: the reply ends once the queued ones are spoken."""
        if not self.closed:
            self.closed = True
            self.speaker._queue.put((self, _END))


class Speaker:
    def __init__(
        self,
        synthesize: Callable[[str], Speech],
        player,  # has play(Speech) -> bool (False when stopped) and stop()
        tail_s: float = 0.3,
    ):
        self._synthesize = synthesize
        self._player = player
        self.tail_s = tail_s
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._open: list[Reply] = []
        self._speaking = False
        self._quiet_since = float("-inf")
        self._thread = threading.Thread(target=self._run, name="speaker", daemon=True)
        self._thread.start()

    def begin(self, callbacks: ReplyCallbacks | None = None) -> Reply:
        reply = Reply(callbacks or ReplyCallbacks(), self)
        with self._lock:
            self._open.append(reply)
        return reply

    def warm_up(self) -> None:
        """Synthesise a word without playing it: the voice engine's first use loads it (1.6 s here), which
        would otherwise delay the first answer."""
        self._synthesize("Ready.")

    def stop(self) -> bool:
        """Interrupt every open reply; True when something was being said or waiting to be."""
        with self._lock:
            replies, self._open = self._open, []
        for reply in replies:
            reply.cancelled = True
        if replies:
            self._player.stop()
        return bool(replies)

    def busy(self, now: float | None = None) -> bool:
        """Speaking, or within `tail_s` of the last sound (monotonic clock)."""
        now = time.monotonic() if now is None else now
        return self._speaking or now < self._quiet_since + self.tail_s

    @property
    def speaking(self) -> bool:
        return self._speaking

    def shutdown(self, timeout: float = 1.0) -> None:
        self.stop()
        self._queue.put((None, _SHUTDOWN))
        self._thread.join(timeout)

    # -- the speaker thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            reply, item = self._queue.get()
            if item is _SHUTDOWN:
                return
            if item is _END:
                self._finish(reply)
            elif not reply.cancelled and reply.error is None:
                self._speak(reply, item)

    def _speak(self, reply: Reply, sentence: str) -> None:
        try:
            began = time.perf_counter()
            speech = self._synthesize(sentence)
            if reply.cancelled:
                return
            if not reply.started:
                reply.started = True
                self._speaking = True
                now = time.perf_counter()
                reply.callbacks.on_start(now, now - began)
            self._speaking = True
            if not self._player.play(speech):
                reply.cancelled = True
        except Exception as exc:  # no voice or no speaker: the reply ends with the error
            log.warning("could not speak: %s", exc)
            reply.error = str(exc)
        finally:
            self._quiet_since = time.monotonic()

    def _finish(self, reply: Reply) -> None:
        with self._lock:
            if reply in self._open:
                self._open.remove(reply)
        self._speaking = False
        self._quiet_since = time.monotonic()
        try:
            reply.callbacks.on_end(reply.cancelled, reply.error)
        finally:
            reply.finished.set()
