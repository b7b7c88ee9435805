"""How many mel frames Qwen2-Audio's encoder is given, and how many audio tokens come out.

The processor pads every clip to 30 s (3000 frames); the converted encoder instead takes
the real frames plus one padding frame and returns only valid positions, so a 4 s question
costs 4 s of encoder work. Pure arithmetic, shared by conversion tests and inference.
"""

from __future__ import annotations

FRAMES_PER_SECOND = 100  # 16 kHz audio, hop 160
MAX_FRAMES = 3000  # 30 s: the encoder's position table holds 1500 strided positions


def encoder_input_frames(valid_frames: int, total_frames: int = MAX_FRAMES) -> int:
    """Frames to feed the encoder: the real ones and the padding the edge convolutions see.

    The last valid strided position n-1 reads first-convolution outputs up to 2n-1, which read
    frames up to 2n: so 2n+1 frames (one padding frame for an even clip, two for an odd one).
    """
    if valid_frames < 1:
        raise ValueError("no audio frames")
    positions = (valid_frames - 1) // 2 + 1
    return min(2 * positions + 1, total_frames)


def encoder_output_tokens(frames_given: int) -> int:
    """Tokens the converted encoder returns for `frames_given` frames (conv stride 2, pool 2)."""
    return (frames_given // 2) // 2


def valid_audio_tokens(valid_frames: int) -> int:
    """Audio tokens for a clip of `valid_frames` real frames, as transformers counts them."""
    conv = (valid_frames - 1) // 2 + 1
    return (conv - 2) // 2 + 1
