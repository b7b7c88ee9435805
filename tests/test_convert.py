"""Conversion of the tiny Qwen2-VL and Qwen2-Audio checkpoints: every f32 sub-model equals
PyTorch on real inputs, the audio encoder runs on real frames only, INT4 really stores 4-bit
weights, and the output folder is safe (manifest, no-op re-run, --force, interruption, bad input).
"""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
import torch
from PIL import Image

from assistant.models import convert_qwen2audio_model, convert_qwen2vl_model
from assistant.models.audio_frames import encoder_input_frames, encoder_output_tokens, valid_audio_tokens
from assistant.models.manifest import read_manifest
from assistant.models.vision_layout import attention_chunks, block_attention_mask, vision_rotary_angles

from speech import SAMPLE_RATE, spoken

pytestmark = pytest.mark.slow

EXACT = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}
TOLERANCE = 1e-4


def compiled(folder, filename, config=EXACT):
    return ov.Core().compile_model(folder / filename, "CPU", config)


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def picture(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def vision_through_openvino(folder, model, pixel_values, grid_thw):
    cfg = model.config.vision_config
    patches = compiled(folder, "openvino_vision_embeddings_model.xml")({"pixel_values": pixel_values})[0]
    head_dim = cfg.embed_dim // cfg.num_heads
    theta = cfg.rope_parameters["rope_theta"]
    merger = compiled(folder, "openvino_vision_embeddings_merger_model.xml")
    inputs = {
        "hidden_states": patches,
        "attention_mask": block_attention_mask(attention_chunks(grid_thw)),
        "rotary_pos_emb": vision_rotary_angles(grid_thw, cfg.spatial_merge_size, head_dim, theta),
    }
    return patches, merger(inputs)[0]


@pytest.mark.parametrize(
    "case",
    ["one image", "two images", "video frames"],
)
def test_vision_submodels_equal_pytorch(vl_f32, vl_torch, case):
    model, processor = vl_torch
    if case == "video frames":
        frames = [picture(112, 84, seed) for seed in range(4)]
        batch = processor.video_processor(videos=[frames], return_tensors="pt")
        pixels, grid = batch["pixel_values_videos"], batch["video_grid_thw"]
        assert int(grid[0, 0]) == 2  # 4 frames -> 2 temporal patches: two attention blocks
    else:
        images = [picture(112, 84, 1)] + ([picture(56, 140, 2)] if case == "two images" else [])
        batch = processor.image_processor(images=images, return_tensors="pt")
        pixels, grid = batch["pixel_values"], batch["image_grid_thw"]
    with torch.no_grad():
        expected_patches = model.model.visual.patch_embed(pixels)
        expected = model.model.visual(pixels, grid_thw=grid).pooler_output
    patches, merged = vision_through_openvino(vl_f32, model, pixels.numpy(), grid.numpy())
    assert merged.shape == tuple(expected.shape)
    assert max_diff(patches, expected_patches) <= TOLERANCE
    assert max_diff(merged, expected) <= TOLERANCE


def test_vl_text_embeddings_and_language_model_equal_pytorch(vl_f32, vl_torch):
    model, _ = vl_torch
    ids = torch.tensor([[1, 5, 9, 42, 7, 3, 11]])
    embeddings = compiled(vl_f32, "openvino_text_embeddings_model.xml")({"input_ids": ids.numpy()})[0]
    with torch.no_grad():
        expected_embeddings = model.model.language_model.embed_tokens(ids)
    assert max_diff(embeddings, expected_embeddings) <= TOLERANCE

    # M-RoPE positions with three different rows, as an image in the prompt produces.
    seq = 9
    t = torch.arange(seq)
    positions = torch.stack([t, t + torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4]), t * 2]).view(3, 1, seq)
    torch.manual_seed(0)
    embeds = torch.randn(1, seq + 1, model.config.text_config.hidden_size)
    _assert_language_model_matches(vl_f32, model, embeds, positions, next_position=torch.full((3, 1, 1), 20))


def _assert_language_model_matches(folder, model, embeds, positions, next_position):
    """Prefill `embeds[:, :-1]` then decode the last embedding; compare both logits with PyTorch."""
    seq = embeds.shape[1] - 1
    request = compiled(folder, "openvino_language_model.xml").create_infer_request()
    request.reset_state()
    prefill = request.infer(
        {
            "inputs_embeds": embeds[:, :seq].numpy(),
            "attention_mask": np.ones((1, seq), np.int64),
            "position_ids": positions.numpy(),
            "beam_idx": np.zeros(1, np.int32),
        }
    )["logits"].copy()
    decode = request.infer(
        {
            "inputs_embeds": embeds[:, seq:].numpy(),
            "attention_mask": np.ones((1, seq + 1), np.int64),
            "position_ids": next_position.numpy(),
            "beam_idx": np.zeros(1, np.int32),
        }
    )["logits"]
    all_positions = torch.cat([positions, next_position], dim=-1)
    with torch.no_grad():
        hidden = model.model.language_model(inputs_embeds=embeds, position_ids=all_positions).last_hidden_state
        expected = model.lm_head(hidden)
    assert prefill.shape == (1, 1, model.config.text_config.vocab_size)
    assert max_diff(prefill[0, -1], expected[0, seq - 1]) <= TOLERANCE
    assert max_diff(decode[0, -1], expected[0, seq]) <= TOLERANCE


def _features(processor, audio):
    prompt = "<|audio_bos|><|AUDIO|><|audio_eos|>"
    batch = processor(text=prompt, audio=[audio], sampling_rate=SAMPLE_RATE, return_tensors="pt")
    return batch["input_features"], int(batch["feature_attention_mask"].sum())


def _padded_masked_reference(model, features, valid_frames):
    """transformers' own computation: 3000 frames, attention masked to the real ones."""
    encoder = model.model.audio_tower
    conv_valid = (valid_frames - 1) // 2 + 1
    mask = torch.zeros(1, 1, 1500, 1500)
    mask[..., conv_valid:] = torch.finfo(torch.float32).min
    with torch.no_grad():
        out = encoder(features, attention_mask=mask).last_hidden_state
    return out[:, : valid_audio_tokens(valid_frames)]


def test_audio_encoder_on_real_frames_equals_padded_run(audio_f32, audio_torch):
    model, processor = audio_torch
    speech = spoken("What is the capital of Peru?", seconds=3.0)
    features, valid = _features(processor, speech)
    assert valid == 300  # 3 s at 100 frames per second
    given = encoder_input_frames(valid)
    encoder = compiled(audio_f32, "openvino_audio_encoder_model.xml")
    short = encoder({"input_features": features[:, :, :given].numpy()})[0]
    expected = _padded_masked_reference(model, features, valid)
    assert short.shape[1] == encoder_output_tokens(given) == valid_audio_tokens(valid) == 75
    assert max_diff(short, expected) <= TOLERANCE


@pytest.mark.parametrize("seconds", [0.57, 1.0, 30.0])
def test_audio_encoder_lengths_including_a_full_clip(audio_f32, audio_torch, seconds):
    model, processor = audio_torch
    rng = np.random.default_rng(3)
    audio = (0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
    features, valid = _features(processor, audio)
    given = encoder_input_frames(valid)
    out = compiled(audio_f32, "openvino_audio_encoder_model.xml")({"input_features": features[:, :, :given].numpy()})[0]
    expected = _padded_masked_reference(model, features, valid)
    assert out.shape[1] == valid_audio_tokens(valid)
    assert max_diff(out, expected) <= TOLERANCE


def test_audio_projection_embeddings_and_language_model_equal_pytorch(audio_f32, audio_torch):
    model, _ = audio_torch
    torch.manual_seed(1)
    states = torch.randn(1, 75, model.config.audio_config.d_model)
    projected = compiled(audio_f32, "openvino_audio_projection_model.xml")({"audio_features": states.numpy()})[0]
    with torch.no_grad():
        expected = model.model.multi_modal_projector(states)
    assert max_diff(projected, expected) <= TOLERANCE

    ids = torch.tensor([[2, 4, 8, 16, 32]])
    embeddings = compiled(audio_f32, "openvino_text_embeddings_model.xml")({"input_ids": ids.numpy()})[0]
    with torch.no_grad():
        assert max_diff(embeddings, model.model.language_model.embed_tokens(ids)) <= TOLERANCE

    seq = 11
    embeds = torch.randn(1, seq + 1, model.config.text_config.hidden_size)
    positions = torch.arange(seq).view(1, seq)
    _assert_language_model_matches(audio_f32, model, embeds, positions, next_position=torch.tensor([[seq]]))


def test_folder_is_complete_for_inference(vl_f32, audio_f32):
    from transformers import AutoConfig, AutoProcessor

    for folder, kind in ((vl_f32, "qwen2-vl"), (audio_f32, "qwen2-audio")):
        manifest = read_manifest(folder, kind)
        assert manifest.compression["language_model"] == {"mode": "none"}
        assert manifest.compression["traced_from"] == "f32"
        assert {"openvino", "nncf", "transformers", "torch"} <= set(manifest.versions)
        for sub in manifest.submodels:
            assert sub.bytes == (folder / sub.bin).stat().st_size > 0
        assert AutoProcessor.from_pretrained(folder).tokenizer.chat_template
        assert AutoConfig.from_pretrained(folder).model_type == kind.replace("-", "_")
        assert (folder / "generation_config.json").is_file()
        assert not [p for p in folder.iterdir() if "uncompressed" in p.name]


def _weight_types(xml) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in ov.Core().read_model(xml).get_ops():
        if op.get_type_name() == "Constant" and op.get_output_size():
            name = op.get_output_element_type(0).get_type_name()
            counts[name] = counts.get(name, 0) + 1
    return counts


def test_int4_conversion_stores_4bit_weights_and_runs(tiny_qwen2audio_dir, tmp_path):
    import nncf

    out = tmp_path / "audio-int4"
    config = {"mode": nncf.CompressWeightsMode.INT4_ASYM, "group_size": 16, "ratio": 1.0}
    result = convert_qwen2audio_model(tiny_qwen2audio_dir, out, config)
    lm = out / "openvino_language_model.xml"
    types = _weight_types(lm)
    assert types.get("u4", 0) >= 7 * 2  # 7 projection matrices per decoder layer, 2 layers
    assert result.manifest.compression["language_model"] == {"group_size": 16, "mode": "int4_asym", "ratio": 1.0}
    assert result.manifest.compression["traced_from"] == "bf16"
    assert result.manifest.compression["encoders"] == "int8"
    assert "u8" in _weight_types(out / "openvino_audio_encoder_model.xml")
    request = ov.Core().compile_model(lm, "CPU").create_infer_request()
    hidden = ov.Core().read_model(lm).input("inputs_embeds").get_partial_shape()[2].get_length()
    logits = request.infer(
        {
            "inputs_embeds": np.random.default_rng(0).standard_normal((1, 6, hidden)).astype(np.float32),
            "attention_mask": np.ones((1, 6), np.int64),
            "position_ids": np.arange(6)[None],
            "beam_idx": np.zeros(1, np.int32),
        }
    )["logits"]
    assert np.isfinite(logits).all() and logits.std() > 0


def test_the_int8_embedding_table_gathers_the_checkpoints_rows(tiny_qwen2audio_dir, audio_torch, tmp_path):
    """By default the table is stored as INT8 rows (the CPU plugin then gathers from the mapped file, where
    it widens a 16-bit table to an f32 copy): each row within the rounding of 8 bits of the checkpoint's."""
    result = convert_qwen2audio_model(tiny_qwen2audio_dir, tmp_path / "audio", None)
    table = tmp_path / "audio" / "openvino_text_embeddings_model.xml"
    assert result.manifest.compression["encoders"] == "int8"
    rows = audio_torch[0].get_input_embeddings().weight
    assert "u8" in _weight_types(table) and "bf16" not in _weight_types(table)
    assert table.with_suffix(".bin").stat().st_size < 0.6 * rows.numel() * 2  # a byte a weight, not two
    ids = np.array([[0, 5, 17, 42, 99]])
    got = compiled(table.parent, table.name)({"input_ids": ids})["inputs_embeds"]
    want = rows[torch.from_numpy(ids)].float().detach().numpy()
    row_range = want.max(axis=-1, keepdims=True) - want.min(axis=-1, keepdims=True)
    assert np.abs(got - want).max() <= (row_range / 255).max()  # half a step of 8 bits, and the scale's f16


def test_fp16_encoder_weights_are_kept_on_request(tiny_qwen2vl_dir, tmp_path):
    result = convert_qwen2vl_model(tiny_qwen2vl_dir, tmp_path / "vl", None, encoder_weights="fp16")
    assert result.manifest.compression["encoders"] == "fp16"
    assert "f16" in _weight_types(tmp_path / "vl" / "openvino_vision_embeddings_merger_model.xml")
    assert "u8" not in _weight_types(tmp_path / "vl" / "openvino_vision_embeddings_merger_model.xml")


def _head_weight_type(xml) -> str:
    """Element type of the output head's stored weight (walking back from the logits' MatMul)."""
    node = ov.Core().read_model(xml).output("logits").get_node().input_value(0).get_node()
    while node.get_type_name() != "MatMul":
        node = node.input_value(0).get_node()
    node = node.input_value(1).get_node()
    while node.get_type_name() != "Constant":  # Convert / Subtract / Multiply / Reshape of the decompression
        node = node.input_value(0).get_node()
    return node.get_output_element_type(0).get_type_name()


def test_int4_head_option_puts_the_output_head_in_4_bits(tiny_qwen2audio_dir, tmp_path):
    from assistant.models.convert.compression import compression_from_options

    default = convert_qwen2audio_model(
        tiny_qwen2audio_dir, tmp_path / "int8-head", compression_from_options("int4", 16, 1.0, False)
    )
    int4 = convert_qwen2audio_model(
        tiny_qwen2audio_dir, tmp_path / "int4-head", compression_from_options("int4", 16, 1.0, False, int4_head=True)
    )
    assert _head_weight_type(default.folder / "openvino_language_model.xml") == "u8"
    assert _head_weight_type(int4.folder / "openvino_language_model.xml") == "u4"
    assert int4.manifest.compression["language_model"]["all_layers"] is True
    assert "all_layers" not in default.manifest.compression["language_model"]


def test_rerun_is_a_no_op_and_force_rebuilds(tiny_qwen2vl_dir, tmp_path):
    out = tmp_path / "vl"
    first = convert_qwen2vl_model(tiny_qwen2vl_dir, out, None)
    stamp = (out / "openvino_language_model.bin").stat().st_mtime_ns
    again = convert_qwen2vl_model(tiny_qwen2vl_dir, out, None)
    assert again.skipped and not first.skipped
    assert (out / "openvino_language_model.bin").stat().st_mtime_ns == stamp
    forced = convert_qwen2vl_model(tiny_qwen2vl_dir, out, None, force=True)
    assert not forced.skipped
    assert (out / "openvino_language_model.bin").stat().st_mtime_ns != stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vl"]  # no staging or old copies left
    from assistant.errors import UsageError

    with pytest.raises(UsageError, match="other settings"):
        convert_qwen2vl_model(tiny_qwen2vl_dir, out, None, full_precision=True)


def test_a_script_that_converts_at_top_level_works(tiny_qwen2vl_dir, tmp_path):
    """The article calls convert_qwen2vl_model(...) at the top of a script, with no `if __name__ ==
    "__main__"` guard; the export child must not run that script again."""
    import subprocess
    import sys

    out = tmp_path / "vl"
    script = tmp_path / "convert_it.py"
    script.write_text(
        "from assistant.models import convert_qwen2vl_model\n"
        f"convert_qwen2vl_model({str(tiny_qwen2vl_dir)!r}, {str(out)!r}, None, full_precision=True)\n"
        "print('converted')\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("converted") == 1
    read_manifest(out, "qwen2-vl")  # a complete folder, manifest written last
