"""Conversion and inference of Qwen2-Audio and Qwen2-VL on OpenVINO."""
