"""Audio sources: a file at any rate, the drop-oldest queue, and a real (virtual) microphone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from assistant.audio.sources import DropOldestQueue, FileSource, MicrophoneSource
from assistant.audio.vad import SAMPLE_RATE, SpeechDetector

from facilities import pulse_virtual_mic
from speech import spoken


def test_file_source_resamples_and_dates_frames_by_file_position(tmp_path):
    import librosa

    speech = spoken("What is the capital of Peru?")
    stereo = librosa.resample(speech, orig_sr=SAMPLE_RATE, target_sr=44100)
    soundfile.write(tmp_path / "q.wav", np.stack([stereo, stereo], axis=1), 44100)

    async def collect():
        return [f async for f in FileSource(tmp_path / "q.wav").frames()]

    frames = asyncio.run(collect())
    assert len(frames) == len(speech) // 480
    assert frames[10].t == pytest.approx(0.3) and frames[0].samples.dtype == np.int16
    detector = SpeechDetector(2)
    assert sum(detector.is_speech(f.samples) for f in frames) > len(frames) // 3


def test_drop_oldest_queue_keeps_the_newest():
    async def run():
        queue = DropOldestQueue(3)
        for i in range(5):
            queue.put(i)
        return [await queue.get() for _ in range(3)], queue.dropped

    assert asyncio.run(run()) == ([2, 3, 4], 2)


@pytest.mark.slow
def test_virtual_microphone_hears_speech_played_into_it(tmp_path):
    """PulseAudio null sink as the microphone: espeak-ng speech played into it reaches the frames."""
    speech = spoken("What is on my screen?")
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, np.concatenate([np.zeros(8000, np.float32), speech]), SAMPLE_RATE)
    with pulse_virtual_mic() as pulse:
        env = {**os.environ, **pulse.env()}
        keep_alive = subprocess.Popen(  # without a stream into the sink, the first second is lost
            ["pacat", "--playback", "--rate=16000", "--channels=1", "--format=s16le", "/dev/zero"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            code = (
                "import asyncio, json, subprocess, sys, numpy as np\n"
                "from assistant.audio.sources import MicrophoneSource\n"
                "from assistant.audio.vad import SpeechDetector\n"
                "async def main():\n"
                "    mic = MicrophoneSource('')\n"
                "    mic.open(asyncio.get_running_loop())\n"
                f"    subprocess.Popen(['paplay', {str(wav)!r}])\n"
                "    det = SpeechDetector(2); n = speech = 0; peak = 0\n"
                "    async for f in mic.frames():\n"
                "        n += 1; speech += det.is_speech(f.samples); peak = max(peak, int(np.abs(f.samples).max()))\n"
                "        if n >= 150: break\n"
                "    print(json.dumps({'frames': n, 'speech': speech, 'peak': peak, 'dropped': mic.queue.dropped}))\n"
                "asyncio.run(main())\n"
            )
            result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        finally:
            keep_alive.terminate()
            keep_alive.wait()
    assert result.returncode == 0, result.stderr
    import json

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["frames"] == 150 and report["dropped"] == 0
    assert report["speech"] >= 20 and report["peak"] > 3000


def test_a_missing_microphone_is_a_clear_error():
    mic = MicrophoneSource("no such device at all")
    with pytest.raises(Exception, match=r"no microphone matches|PortAudio"):
        mic.resolve_device()
