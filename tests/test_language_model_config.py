"""When the language model computes with int8 activations (on a bf16 CPU, INT4/INT8 weights) while the
encoders keep the CPU's default: the decision table, and a real INT4 conversion on this CPU."""

from __future__ import annotations

import openvino as ov
import pytest

from assistant.models.runtime import language_model_config

INT4 = {"mode": "int4_asym", "group_size": 128, "ratio": 1.0}
BF16_CPU = ("FP32", "BF16", "INT8", "EXPORT_IMPORT")


def decide(prompt=None, device="CPU", activations="int8", weights=INT4, capabilities=BF16_CPU):
    return language_model_config(
        prompt if prompt is not None else {"PERFORMANCE_HINT": "LATENCY"},
        device=device,
        decode_activations=activations,
        weights=weights,
        capabilities=capabilities,
    )


def test_a_bf16_cpu_with_int4_weights_gets_int8_activations_in_the_weights_group():
    assert decide() == {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
        "DYNAMIC_QUANTIZATION_GROUP_SIZE": "128",
    }
    assert decide(weights={"mode": "int4_sym", "group_size": 64})["DYNAMIC_QUANTIZATION_GROUP_SIZE"] == "64"
    # Per-channel INT4 and INT8 weights have no group: OpenVINO's default group of 32.
    assert decide(weights={"mode": "int4_asym", "group_size": -1})["DYNAMIC_QUANTIZATION_GROUP_SIZE"] == "32"
    assert decide(weights={"mode": "int8_asym"})["DYNAMIC_QUANTIZATION_GROUP_SIZE"] == "32"


@pytest.mark.parametrize(
    "case",
    [
        dict(activations="same"),
        dict(device="GPU"),
        dict(device="AUTO"),
        dict(prompt={"INFERENCE_PRECISION_HINT": "f32"}),  # an explicit precision (config or ov_config)
        dict(prompt={"INFERENCE_PRECISION_HINT": "bf16"}),
        dict(prompt={"DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}),
        dict(weights={"mode": "none"}),  # float weights are not quantized on the fly
        dict(capabilities=("FP32", "INT8")),  # no bf16: the CPU's default already is f32 with int8 activations
    ],
    ids=str,
)
def test_one_compilation_otherwise(case):
    assert decide(**case) is None


@pytest.fixture(scope="module")
def audio_int4(tiny_qwen2audio_dir, tmp_path_factory):
    import nncf

    from assistant.models import convert_qwen2audio_model

    out = tmp_path_factory.mktemp("convert") / "audio-int4"
    config = {"mode": nncf.CompressWeightsMode.INT4_ASYM, "group_size": 16, "ratio": 1.0}
    convert_qwen2audio_model(tiny_qwen2audio_dir, out, config)
    return out


@pytest.mark.slow
def test_an_int4_model_on_this_cpu_runs_its_language_model_with_int8_activations_and_answers(audio_int4):
    from assistant.models import OVQwen2AudioModel
    from assistant.models.runtime import RuntimeOptions
    from assistant.models.transcript import audio_prompt

    from speech import spoken

    bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    model = OVQwen2AudioModel(audio_int4)
    language_model, encoder = model._compiled["language_model"], model._compiled["audio_encoder"]
    if bf16:
        assert str(language_model.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE")) == "16"  # the weights' group
        assert language_model.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
        assert encoder.get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16
    same = OVQwen2AudioModel(audio_int4, runtime=RuntimeOptions(decode_activations="same"))
    assert same._compiled["language_model"].get_property("INFERENCE_PRECISION_HINT") == encoder.get_property(
        "INFERENCE_PRECISION_HINT"
    )
    inputs = audio_prompt(model.preprocessor, [spoken("What time is it?", seconds=2.0)], "What was said?")
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False, ignore_eos=True)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 8
    assert model.last_stats.new_tokens == 8
