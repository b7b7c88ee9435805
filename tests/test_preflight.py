"""The estimates and checks `convert` makes before the long work (pure: no download, no model)."""

from __future__ import annotations

import shutil

import pytest

from assistant.errors import UsageError
from assistant.models.convert.preflight import (
    GIB,
    ConversionNeeds,
    check_room,
    estimate_needs,
    parameter_count,
)
from assistant.system_memory import _room

# The real checkpoints' safetensors, in bytes (bf16): Qwen2-Audio-7B-Instruct 8.40B and Qwen2-VL-2B-Instruct
# 2.21B parameters.
AUDIO_7B_BYTES = 16_794_000_000
VL_2B_BYTES = 4_418_000_000


def test_memory_estimates_match_the_measured_conversions():
    # README: converting the 7B peaked at 17.9 GiB, the 2B at 5.7 GiB (PSS summed over the process tree).
    audio = estimate_needs({"torch_dtype": "bfloat16"}, AUDIO_7B_BYTES, AUDIO_7B_BYTES, "int4")
    vl = estimate_needs({"torch_dtype": "bfloat16"}, VL_2B_BYTES, VL_2B_BYTES, "int4")
    assert 17.5 <= audio.memory_bytes / GIB <= 18.5
    assert 5.6 <= vl.memory_bytes / GIB <= 6.2
    assert audio.parameters == AUDIO_7B_BYTES // 2
    # f32 tracing holds the weights in f32: twice the memory and twice the exported files.
    f32 = estimate_needs({}, VL_2B_BYTES, 0, "f32")
    assert f32.memory_bytes > 1.9 * (vl.memory_bytes - 1.5 * GIB)
    assert f32.output_bytes > vl.output_bytes


def test_parameters_follow_the_dtype_config_json_names():
    assert parameter_count({"torch_dtype": "float32"}, 4000) == 1000
    assert parameter_count({"text_config": {"torch_dtype": "bfloat16"}}, 4000) == 2000
    assert parameter_count({}, 4000) == 2000  # the hub's Qwen checkpoints are bf16


def test_cgroup_room_reads_v1_and_v2_files(tmp_path):
    limit, usage, stat = tmp_path / "limit", tmp_path / "usage", tmp_path / "stat"
    limit.write_text("1073741824\n")
    usage.write_text("536870912\n")
    stat.write_text("cache 100\ntotal_inactive_file 268435456\n")
    assert _room(limit, usage, stat, "total_inactive_file") == (1 << 30, (1 << 29) + (1 << 28))
    limit.write_text("max\n")  # cgroup v2 without a limit
    assert _room(limit, usage, stat, "inactive_file") is None
    limit.write_text(str(0x7FFFFFFFFFFFF000))  # cgroup v1 "no limit"
    assert _room(limit, usage, stat, "total_inactive_file") is None


def test_a_download_and_a_conversion_on_one_disk_add_up(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    fits_alone = ConversionNeeds(parameters=1, download_bytes=free // 2 + 1, output_bytes=free // 2 + 1, memory_bytes=0)
    with pytest.raises(UsageError, match=r"to download and .* to convert") as caught:
        check_room(fits_alone, "Qwen/Qwen2-VL-2B-Instruct", tmp_path / "hub", tmp_path / "out" / "vl")
    assert "--out" in str(caught.value)
    check_room(fits_alone, "a local folder", None, tmp_path / "out" / "vl")  # nothing to download: it fits


def test_too_little_memory_names_both_numbers(tmp_path):
    needs = ConversionNeeds(parameters=1, download_bytes=0, output_bytes=0, memory_bytes=1 << 50)
    with pytest.raises(UsageError, match=r"needs about 1048576\.0 GiB and .* GiB are available"):
        check_room(needs, "Qwen/Qwen2-Audio-7B-Instruct", None, tmp_path / "audio")
