"""The service's decisions with fake models and a fake speaker: barge-in by wake phrase, the stop
command, screen routing and capture failures, mute, and sentences spoken while the answer streams."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from assistant.audio.sources import Frame
from assistant.audio.vad import Utterance, frames_of
from assistant.config import load_settings
from assistant.daemon.events import EventLog
from assistant.daemon.service import NO_SCREEN, AssistantService, Request
from assistant.models.engine import GenerationStats
from assistant.models.transcript import Transcript
from assistant.screen.capture import ScreenCaptureUnavailable
from assistant.speech.speaker import Speaker
from assistant.speech.synthesis import Speech

from speech import spoken

WORDS = ["<end>", "Lima", " is", " the", " capital.", " It", " is", " by", " the", " sea."]


class FakeTokenizer:
    def decode(self, ids, skip_special_tokens=True):
        return "".join(WORDS[i] for i in ids if i != 0)


class FakePreprocessor:
    tokenizer = FakeTokenizer()

    def apply_chat_template(self, messages):
        return repr(messages)

    def __call__(self, prompt, audio=None, images=None, videos=None, max_pixels=None):
        return {"input_ids": np.zeros((1, 3), np.int64), "images": images}


class FakeModel:
    """Transcribes to the next scripted text; answers with WORDS, one token every `delay` seconds."""

    def __init__(self, transcripts=(), delay=0.0):
        self.preprocessor = FakePreprocessor()
        self.transcripts = list(transcripts)
        self.delay = delay
        self.generated_at: list[float] = []
        self.inputs: list[dict] = []

    def transcribe_prompt(self, inputs, max_new_tokens=200, keep_going=None):
        """The scripted transcript, word by word as tokens arrive: it stops where `keep_going` says no."""
        text = self.transcripts.pop(0)
        words = text.split(" ")
        for n in range(1, len(words) + 1):
            so_far = " ".join(words[:n]) + (" " if n < len(words) else "")
            if keep_going is not None and not keep_going(so_far):
                return Transcript(so_far.strip(), "en", tokens=n, stopped_early=True)
        return Transcript(text, "en", tokens=len(words))

    def stop_ids(self):
        return frozenset({0})

    def generate(self, on_token=None, cancel=None, **inputs):
        self.inputs.append(inputs)
        for token in [*range(1, len(WORDS)), 0]:
            if cancel is not None and cancel.is_set():
                break
            time.sleep(self.delay)
            on_token(token)
        self.generated_at.append(time.perf_counter())


class RecordingPlayer:
    def __init__(self):
        self.said: list[tuple[float, int]] = []
        self.stopped = threading.Event()

    def play(self, speech: Speech) -> bool:
        self.said.append((time.perf_counter(), len(speech.samples)))
        return True

    def stop(self) -> None:
        self.stopped.set()


@pytest.fixture
def settings(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[activation]\nmode = "wake_phrase"\n[runtime]\nwarm_up = false\n')
    return load_settings(path)


def make_service(settings, transcripts, vl=None, delay=0.0):
    texts: list[str] = []

    def voice(text: str) -> Speech:
        texts.append(text)
        return Speech(np.zeros(len(text), np.float32), 16000)

    player = RecordingPlayer()
    speaker = Speaker(voice, player, tail_s=0.0)
    service = AssistantService(settings, EventLog(), FakeModel(transcripts, delay), vl, speaker=speaker)
    service.file_mode = True  # events at file positions; each reply is awaited
    return service, texts, player


def request(while_speaking=False, end=2.0) -> Request:
    utterance = Utterance(np.zeros(16000, np.int16), 1.0, end, "silence")
    return Request("speech", utterance, time.perf_counter(), while_speaking)


def answer(service, req: Request) -> list[dict]:
    async def go():
        await service._answer(req, lambda: req.utterance.end if req.utterance else 0.0)

    asyncio.run(go())
    service.speaker.shutdown()
    return service.events.history


def names(events):
    return [e["event"] for e in events]


def test_sentences_are_spoken_while_the_answer_is_still_written(settings):
    service, texts, player = make_service(settings, ["hey assistant what is the capital of peru"], delay=0.05)
    events = answer(service, request())
    assert texts == ["Lima is the capital.", "It is by the sea."]
    first_sound = player.said[0][0]
    assert first_sound < service.audio_model.generated_at[0] - 0.1  # heard before the last token was written
    assert [e["text"] for e in events if e["event"] == "answer"] == ["Lima is the capital. It is by the sea."]
    start = next(e for e in events if e["event"] == "speak_start")
    assert start["after_first_sentence_ms"] >= 0
    assert names(events).index("speak_end") > names(events).index("answer")


class MeasuredModel(FakeModel):
    """A fake model whose calls leave the engine's figures behind, as the OpenVINO models do."""

    def transcribe_prompt(self, inputs, max_new_tokens=200, keep_going=None):
        heard = super().transcribe_prompt(inputs, max_new_tokens, keep_going)
        self.last_stats = GenerationStats(prompt_tokens=60, new_tokens=heard.tokens, embed_s=0.02, prefill_s=0.05)
        return heard

    def generate(self, on_token=None, cancel=None, **inputs):
        super().generate(on_token, cancel, **inputs)
        self.last_stats = GenerationStats(prompt_tokens=64, reused_tokens=58, new_tokens=10, prefill_s=0.01)


def test_each_stage_from_the_end_of_speech_to_the_first_sound_is_reported(settings):
    service, _, _ = make_service(settings, ["hey assistant what is the capital of peru"], delay=0.01)
    service.audio_model = MeasuredModel(["hey assistant what is the capital of peru"], delay=0.01)
    events = answer(service, request())
    (done,) = (e for e in events if e["event"] == "answer")
    ms, tokens = done["timings"], done["tokens"]
    assert ms["transcript_encode"] == 20 and ms["transcript_prefill"] == 30
    assert ms["answer_encode"] == 0 and ms["answer_prefill"] == 10
    for stage in ("transcript_inputs", "transcript_tokens", "routing", "answer_inputs", "answer_tokens"):
        assert ms[stage] >= 0, stage
    assert tokens["transcript_new"] == 8 and tokens["answer_reused"] == 58
    assert tokens["answer_to_first_sentence"] == 4  # "Lima is the capital." is spoken at its period
    start = next(e for e in events if e["event"] == "speak_start")
    # The request's clock starts when the endpointer ended the utterance, before the first sentence existed.
    assert start["after_end_of_speech_ms"] >= ms["transcribe"] + start["after_first_sentence_ms"]
    assert 0 <= start["synthesis_ms"] <= start["after_first_sentence_ms"]
    (heard,) = (e for e in events if e["event"] == "transcript")
    assert heard["cpu_ms"] >= 0


def test_heard_while_speaking_without_the_wake_phrase_is_the_assistants_own_voice(settings):
    service, texts, player = make_service(settings, ["lima is the capital"])
    events = answer(service, request(while_speaking=True))
    assert [e.get("reason") for e in events if e["event"] == "ignored"] == ["heard while speaking"]
    # "lima" cannot begin a wake phrase: the transcript went no further than that word.
    assert [(e["text"], e["stopped_early"]) for e in events if e["event"] == "transcript"] == [("lima", True)]
    assert "answer" not in names(events) and not player.stopped.is_set() and texts == []


def test_a_wake_phrase_while_speaking_interrupts_and_is_answered(settings):
    service, _texts, player = make_service(settings, ["hey assistant", "hey assistant and chile"])
    playing = service.speaker.begin()  # an earlier answer still being said
    playing.say("Something long.")
    events = answer(service, request(while_speaking=True))
    assert player.stopped.is_set() and playing.cancelled
    assert "speak_stopped" in names(events)
    assert [e["question"] for e in events if e["event"] == "route"] == ["and chile"]


def test_stop_after_the_wake_phrase_stops_talking_and_answers_nothing(settings):
    service, _texts, player = make_service(settings, ["Hey assistant, stop!"])
    service.speaker.begin().say("Still talking.")
    events = answer(service, request())
    assert [e.get("reason") for e in events if e["event"] == "ignored"] == ["stop command"]
    assert player.stopped.is_set() and "route" not in names(events)


def test_a_screen_question_goes_to_the_vision_model_with_the_screenshot(settings, monkeypatch):
    from PIL import Image

    shot = Image.new("RGB", (640, 360), (255, 128, 0))
    monkeypatch.setattr("assistant.screen.capture.capture_screen", lambda which: shot)
    vl = FakeModel()
    service, _texts, _ = make_service(settings, ["hey assistant what's on my screen"], vl=vl)
    events = answer(service, request())
    assert [e["route"] for e in events if e["event"] == "route"] == ["screen"]
    assert vl.inputs[0]["images"] == [shot] and service.audio_model.inputs == []
    assert [(e["width"], e["height"]) for e in events if e["event"] == "screenshot"] == [(640, 360)]


def test_no_way_to_capture_the_screen_is_said_out_loud(settings, monkeypatch):
    def fail(which):
        raise ScreenCaptureUnavailable("no display")

    monkeypatch.setattr("assistant.screen.capture.capture_screen", fail)
    service, texts, _ = make_service(settings, ["hey assistant what is on my screen"], vl=FakeModel())

    async def go():
        worker = asyncio.create_task(service._answer_requests())
        await service._requests.put(request())
        await service._requests.join()
        worker.cancel()

    asyncio.run(go())
    service.speaker.shutdown()
    errors = [e["message"] for e in service.events.history if e["event"] == "error"]
    assert errors and "no display" in errors[0]
    assert texts == [NO_SCREEN]


@pytest.mark.slow
def test_nothing_is_heard_while_muted(settings):
    service, _, _ = make_service(settings, [])
    audio = np.concatenate([np.zeros(8000, np.float32), spoken("Hey assistant, what time is it?")])

    async def frames():
        for i, samples in enumerate(frames_of(np.concatenate([audio, np.zeros(16000, np.float32)]))):
            yield Frame(samples, i * 0.03)

    async def go():
        service.set_muted(True)
        await service.run(frames(), file_mode=True, exit_at_end=True)

    asyncio.run(go())
    service.speaker.shutdown()
    events = names(service.events.history)
    assert "muted" in events and "speech_start" not in events
    assert [e["state"] for e in service.events.history if e["event"] == "state"][-1] == "muted"


def live(service, text: str, push_at: int | None = None):
    """Run the service on `text` spoken once, as live microphone frames (not a file), with push-to-talk
    pressed before frame `push_at`. The frames' own times start at 100 s (a device's stream clock)."""
    audio = np.concatenate([np.zeros(8000, np.float32), spoken(text), np.zeros(24000, np.float32)])

    async def frames():
        for i, samples in enumerate(frames_of(audio)):
            if i == push_at:
                service.talk()
            yield Frame(samples, 100 + i * 0.03)
            await asyncio.sleep(0)  # let the head check's thread start while the speech goes on

    asyncio.run(service.run(frames(), file_mode=False, exit_at_end=True))
    service.speaker.shutdown()
    return service.events.history


def test_speech_whose_head_is_no_wake_phrase_is_ignored_without_a_transcript_of_its_own(settings):
    # One transcript only: a second transcription (of the whole utterance) would find none and fail.
    service, texts, _ = make_service(settings, ["we should meet at noon tomorrow"])
    events = live(service, "We should meet at noon tomorrow to talk about the budget.")
    (heard,) = (e for e in events if e["event"] == "transcript")
    assert heard["stopped_early"] and heard["head_s"] >= 1.0 and heard["tokens"] == 1
    assert [e["reason"] for e in events if e["event"] == "ignored"] == ["no wake phrase"]
    assert "error" not in names(events) and texts == []


def test_speech_whose_head_may_be_a_wake_phrase_is_transcribed_whole_and_answered(settings):
    service, texts, _ = make_service(settings, ["hey assistant what", "hey assistant what is the capital of peru"])
    events = live(service, "Hey assistant, what is the capital of Peru?")
    assert [e["text"] for e in events if e["event"] == "transcript"] == ["hey assistant what is the capital of peru"]
    assert texts == ["Lima is the capital.", "It is by the sea."]


def test_push_to_talk_before_speaking_makes_it_a_request_without_a_wake_phrase(settings):
    service, texts, _ = make_service(settings, ["what is the capital of peru"])
    events = live(service, "What is the capital of Peru?", push_at=5)
    assert [e["text"] for e in events if e["event"] == "transcript"] == ["what is the capital of peru"]
    assert texts == ["Lima is the capital.", "It is by the sea."]
