"""The memory the models need, worked out from manifests and configs (pure), against the figures
benchmarks/memory.py measured with the full-size models; and how `run` acts on it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from assistant import memory_check
from assistant.config import load_settings
from assistant.errors import UsageError
from assistant.models.manifest import Manifest, SubModel
from assistant.models.memory_needs import GIB, kv_cache_bytes, longest_prompt, model_need, service_need

# The full-size scripted folders' sub-model files (bytes) and configs, as `assistant convert` wrote them:
# FP16 encoders (converter 1) and INT8 ones (the default since converter 2).
AUDIO_FILES = {
    "text_embeddings": 1_278_214_148,
    "audio_encoder": 1_272_944_810,
    "audio_projection": 10_485_760,
    "language_model": 3_016_365_669,
}
VL_FILES = {
    "text_embeddings": 466_747_396,
    "image_embedding": 3_010_616,
    "image_embedding_merger": 1_326_453_930,
    "language_model": 688_380_653,
}
AUDIO_INT8_FILES = {
    "text_embeddings": 639_575_172,
    "audio_encoder": 643_346_096,
    "audio_projection": 5_255_168,
    "language_model": 3_016_365_669,
}
VL_INT8_FILES = {
    "text_embeddings": 233_829_508,
    "image_embedding": 1_509_176,
    "image_embedding_merger": 664_360_620,
    "language_model": 688_380_653,
}
AUDIO_CONFIG = {"text_config": {"num_hidden_layers": 32, "num_attention_heads": 32, "hidden_size": 4096}}
VL_CONFIG = {
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "hidden_size": 1536,
    "vision_config": {"embed_dim": 1280},
}


def folder_with(
    tmp_path: Path, kind: str, files: dict[str, int], config: dict, encoders: str = "fp16"
) -> tuple[Path, Manifest]:
    folder = tmp_path / f"{kind}-{encoders}"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    subs = tuple(SubModel(name, f"{name}.xml", f"{name}.bin", size) for name, size in files.items())
    compression = {"language_model": {"mode": "int4_asym", "group_size": 128}, "encoders": encoders}
    return folder, Manifest(kind, "test", None, compression, subs)  # type: ignore[arg-type]


def test_the_kv_cache_is_u8_with_a_scale_and_zero_point_per_position_and_head_or_two_bytes_a_value():
    # 7B: 32 layers x K and V x 32 heads x (128 + 8) bytes a position
    assert kv_cache_bytes(AUDIO_CONFIG, 1) == 2 * 32 * 32 * 136
    assert kv_cache_bytes(VL_CONFIG, 1) == 2 * 28 * 2 * 136  # grouped-query attention: 2 KV heads
    assert kv_cache_bytes(VL_CONFIG, 1, "bf16") == 2 * 28 * 2 * 128 * 2


COMMON = {"history_turns": 4, "max_new_tokens": 256, "max_pixels": 401408}


def need_at(need, config: dict, positions: int, precision: str = "u8") -> float:
    """GiB of a need with its KV cache at `positions` instead of the longest prompt's."""
    kv = next(size for name, size in need.parts.items() if "KV cache" in name)
    return (need.total - kv + kv_cache_bytes(config, positions, precision)) / GIB


@pytest.mark.parametrize(
    "encoders, audio_files, vl_files, audio_gib, vl_gib",
    [("int8", AUDIO_INT8_FILES, VL_INT8_FILES, 5.42, 2.20), ("fp16", AUDIO_FILES, VL_FILES, 7.21, 4.05)],
)
def test_the_need_matches_what_the_full_size_models_took(tmp_path, encoders, audio_files, vl_files, audio_gib, vl_gib):
    """benchmarks/memory.py, AVX2-only CPU (f16 encoders widened): anonymous memory at a 605-position
    transcription for the 7B alone, and for the 2B at the pixel cap after the screenshot question."""
    audio_dir, audio = folder_with(tmp_path, "qwen2-audio", audio_files, AUDIO_CONFIG, encoders)
    vl_dir, vl = folder_with(tmp_path, "qwen2-vl", vl_files, VL_CONFIG, encoders)
    audio_need = model_need(audio_dir, audio, widens_f16=True, **COMMON)
    assert audio_gib * 0.97 <= need_at(audio_need, AUDIO_CONFIG, 605) <= audio_gib * 1.03
    vl_need = model_need(vl_dir, vl, widens_f16=True, **COMMON)
    assert vl_gib * 0.97 <= need_at(vl_need, VL_CONFIG, 560, "bf16") <= vl_gib * 1.05
    both = service_need([audio_need, vl_need])
    assert both.total == audio_need.total + vl_need.total + both.parts["Python, OpenVINO, tokenizers, threads"]
    # With bf16 in the CPU f16 encoders keep their file's size; INT8 ones do anyway.
    widened = model_need(audio_dir, audio, widens_f16=False, **COMMON).total < audio_need.total - GIB
    assert widened == (encoders == "fp16")


def test_both_full_size_models_fit_in_9_gib_with_int8_encoders(tmp_path):
    audio_dir, audio = folder_with(tmp_path, "qwen2-audio", AUDIO_INT8_FILES, AUDIO_CONFIG, "int8")
    vl_dir, vl = folder_with(tmp_path, "qwen2-vl", VL_INT8_FILES, VL_CONFIG, "int8")
    needs = [
        model_need(d, m, widens_f16=True, history_audio_s=60, **COMMON) for d, m in ((audio_dir, audio), (vl_dir, vl))
    ]
    assert 8.0 <= service_need(needs).total / GIB <= 9.0


def test_the_longest_prompt_is_the_history_and_a_30_s_clip_or_the_screenshot_at_the_cap():
    assert longest_prompt("qwen2-audio", history_turns=4, max_new_tokens=256, max_pixels=0) == 5 * 790 + 5 * 256
    # 60 s of speech in the history: 1500 tokens of it, and the turns' template text and answers.
    bounded = longest_prompt("qwen2-audio", history_turns=4, max_new_tokens=256, max_pixels=0, history_audio_s=60)
    assert bounded == 1500 + 750 + 5 * 40 + 5 * 256
    assert longest_prompt("qwen2-vl", history_turns=4, max_new_tokens=256, max_pixels=401408) == 512 + 80 + 256


def fit(need_gib: float, limit_gib: float, available_gib: float, fp16_encoders=()) -> memory_check.MemoryFit:
    from assistant.models.memory_needs import MemoryNeed

    need = MemoryNeed({"Qwen2-Audio weights": int(need_gib * GIB)})
    limit, available = int(limit_gib * GIB), int(available_gib * GIB)
    return memory_check.MemoryFit(need, limit, "its memory cgroup's limit", available, fp16_encoders)


def test_a_need_beyond_the_limit_is_refused_in_one_line_with_the_way_out(monkeypatch):
    settings = load_settings()
    monkeypatch.setattr(memory_check, "memory_fit", lambda *a: fit(9.6, 8.0, 7.0))
    with pytest.raises(UsageError) as caught:
        memory_check.check_memory_before_start(settings, with_vl=True)
    line = str(caught.value)
    assert "\n" not in line
    assert "the models need ~9.6 GiB" in line and "memory cgroup's limit is 8.0 GiB" in line
    assert "[screen] max_pixels" in line and "[screen] enabled = false" in line and 'device = "GPU"' in line
    assert "convert" not in line  # the folders have INT8 encoders already


def test_a_folder_with_fp16_encoders_is_told_to_convert_again(monkeypatch):
    monkeypatch.setattr(memory_check, "memory_fit", lambda *a: fit(12.8, 9.0, 9.0, ("audio", "vl")))
    with pytest.raises(UsageError, match=r"converting again with INT8 encoders \(assistant convert all --force\)"):
        memory_check.check_memory_before_start(load_settings(), with_vl=True)


def test_a_need_beyond_what_is_free_now_is_a_warning(monkeypatch, caplog):
    settings = load_settings()
    monkeypatch.setattr(memory_check, "memory_fit", lambda *a: fit(9.6, 16.0, 7.0))
    with caplog.at_level(logging.WARNING, logger="assistant"):
        memory_check.check_memory_before_start(settings, with_vl=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "only 7.0 GiB is free now" in warnings[0]
    assert "[screen]" not in warnings[0]  # the screen model is not loaded: no way out through it
    monkeypatch.setattr(memory_check, "memory_fit", lambda *a: fit(6.0, 16.0, 7.0))
    caplog.clear()
    memory_check.check_memory_before_start(settings, with_vl=True)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
