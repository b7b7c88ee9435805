"""Pure arithmetic shared by conversion and inference: audio frame counts, vision layout."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from assistant.models.audio_frames import encoder_input_frames, encoder_output_tokens, valid_audio_tokens
from assistant.models.vision_layout import (
    attention_chunks,
    block_attention_mask,
    vision_position_ids,
    vision_rotary_angles,
)


def test_encoder_on_real_frames_yields_exactly_the_valid_tokens_for_every_length():
    for frames in range(1, 3001):
        given = encoder_input_frames(frames)
        assert given <= 3000
        assert encoder_output_tokens(given) == valid_audio_tokens(frames), frames
    assert valid_audio_tokens(3000) == 750  # 25 tokens per second of speech
    assert valid_audio_tokens(400) == 100


def test_no_frames_is_an_error():
    with pytest.raises(ValueError):
        encoder_input_frames(0)


@pytest.mark.parametrize("grid", [[[1, 6, 8]], [[2, 4, 4]], [[1, 6, 8], [1, 10, 4]]])
def test_vision_positions_match_transformers(grid):
    import torch
    from transformers.vision_utils import get_vision_position_ids

    expected = get_vision_position_ids(torch.tensor(grid), 2).numpy()
    assert np.array_equal(vision_position_ids(np.array(grid), 2), expected)


def test_vision_rotary_angles_match_transformers():
    import torch
    from transformers import Qwen2VLConfig
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLVisionRotaryEmbedding
    from transformers.vision_utils import get_vision_position_ids

    config = Qwen2VLConfig(vision_config={"embed_dim": 64, "num_heads": 4, "depth": 1}).vision_config
    grid = torch.tensor([[2, 4, 6]])
    rotary = Qwen2VLVisionRotaryEmbedding(config)
    cos, _ = rotary(torch.zeros(1), get_vision_position_ids(grid, 2))
    angles = vision_rotary_angles(grid.numpy(), 2, head_dim=16, theta=config.rope_parameters["rope_theta"])
    assert angles.shape == (48, 8)
    assert np.allclose(np.cos(np.concatenate([angles, angles], -1)), cos.numpy(), atol=1e-6)


def test_block_mask_keeps_attention_inside_each_image_and_frame():
    chunks = attention_chunks(np.array([[2, 2, 2], [1, 4, 2]]))
    assert chunks == [4, 4, 8]
    mask = block_attention_mask(chunks)
    assert mask.shape == (1, 16, 16)
    assert (mask[0, :4, :4] == 0).all() and (mask[0, 4:8, 4:8] == 0).all() and (mask[0, 8:, 8:] == 0).all()
    assert (mask[0, :4, 4:] < -1e30).all() and (mask[0, 8:, :8] < -1e30).all()


def test_importing_the_models_package_does_not_import_torch():
    code = (
        "import sys, assistant.models, assistant.models.audio_frames, assistant.models.vision_layout; "
        "print('torch' in sys.modules, 'nncf' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_no_telemetry_module_can_load_in_an_assistant_process():
    code = (
        "import assistant, importlib\n"
        "try:\n    importlib.import_module('openvino_telemetry'); print('loaded')\n"
        "except ImportError:\n    print('blocked')\n"
        "from openvino.tools.ovc import convert_impl\n"
        "print(convert_impl.tm.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["blocked", "openvino.tools.ovc.telemetry_stub"]
