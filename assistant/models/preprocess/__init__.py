"""Torch-free preprocessing for Qwen2-VL and Qwen2-Audio: what transformers' processors compute, in numpy.

The running assistant must not import torch, and ``import transformers`` does (through its rope utilities)
whenever torch is installed. So tokenizing, chat templates, image/video patches, Whisper features and
M-RoPE positions are reimplemented here from tokenizers, jinja2, PIL, PyAV, soxr and numpy, and tested
value for value against the transformers processors.

    pre = Qwen2VLPreprocessor.from_dir(model_dir)
    prompt = pre.apply_chat_template(messages)
    inputs = pre(prompt, images=[screenshot], max_pixels=401_408)   # dict of numpy arrays
"""

from __future__ import annotations

from .audio import AudioSettings, audio_token_count, load_audio, log_mel_features, mel_filter_bank, valid_frames
from .chat import ChatTemplate, compile_template
from .errors import PreprocessError
from .images import ImageSettings, image_token_count, load_image, preprocess_images, smart_resize, to_rgb_array
from .positions import get_rope_index, text_position_ids, vision_position_ids
from .processors import Qwen2AudioPreprocessor, Qwen2VLPreprocessor, expand_placeholders
from .resize import resize_uint8, resize_uint8_via_float
from .tokenizer import StreamDecoder, Tokenizer, load_chat_template
from .video import VideoClip, VideoSettings, preprocess_videos, read_video, sample_count, sample_indices

__all__ = [
    "AudioSettings",
    "ChatTemplate",
    "ImageSettings",
    "PreprocessError",
    "Qwen2AudioPreprocessor",
    "Qwen2VLPreprocessor",
    "StreamDecoder",
    "Tokenizer",
    "VideoClip",
    "VideoSettings",
    "audio_token_count",
    "compile_template",
    "expand_placeholders",
    "get_rope_index",
    "image_token_count",
    "load_audio",
    "load_chat_template",
    "load_image",
    "log_mel_features",
    "mel_filter_bank",
    "preprocess_images",
    "preprocess_videos",
    "read_video",
    "resize_uint8",
    "resize_uint8_via_float",
    "sample_count",
    "sample_indices",
    "smart_resize",
    "text_position_ids",
    "to_rgb_array",
    "valid_frames",
    "vision_position_ids",
]
