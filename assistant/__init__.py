"""A local, private desktop voice assistant on Qwen2-Audio and Qwen2-VL through OpenVINO."""

__version__ = "0.1.0"
