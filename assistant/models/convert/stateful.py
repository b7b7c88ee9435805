"""Turn an exported decoder's KV-cache inputs/outputs into state kept inside the model.

Three steps, as the stateful LLM IRs of OpenVINO tools have them:
1. a `beam_idx` input that reorders the cache along the batch axis (needed by pipelines
   that do beam search, harmless for greedy decoding);
2. OpenVINO's make-stateful pass: each past-key/value input becomes a ReadValue and its
   present output an Assign of the same variable;
3. an initializer for every ReadValue (an empty [batch, heads, 0, head_dim] cache): without
   one the CPU plugin refuses to compile a model whose state shape is dynamic.
"""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino._offline_transformations import apply_make_stateful_transformation


def make_stateful(model: ov.Model, past_to_present: dict[str, str], batch_input: str) -> None:
    _add_beam_idx(model, list(past_to_present))
    apply_make_stateful_transformation(model, past_to_present)
    _add_state_initializers(model, batch_input)
    model.validate_nodes_and_infer_types()


def _add_beam_idx(model: ov.Model, cache_inputs: list[str]) -> None:
    beam_idx = ops.parameter(ov.PartialShape([-1]), ov.Type.i32, name="beam_idx")
    beam_idx.output(0).get_tensor().set_names({"beam_idx"})
    for name in cache_inputs:
        param = model.input(name).get_node()
        consumers = list(param.output(0).get_target_inputs())
        reordered = ops.gather(param, beam_idx, ops.constant(np.int64(0)))
        for consumer in consumers:
            consumer.replace_source_output(reordered.output(0))
    model.add_parameters([beam_idx])


def _add_state_initializers(model: ov.Model, batch_input: str) -> None:
    batch = ops.gather(
        ops.shape_of(model.input(batch_input)), ops.constant(np.array([0], np.int64)), ops.constant(np.int64(0))
    )
    variables = {v.info.variable_id: v for v in model.get_variables()}
    for op in model.get_ops():
        if op.get_type_name() != "ReadValue":
            continue
        shape = op.get_output_partial_shape(0)
        heads, head_dim = shape[1].get_length(), shape[3].get_length()
        dims = ops.concat([batch, ops.constant(np.array([heads, 0, head_dim], np.int64))], axis=0)
        init = ops.broadcast(ops.constant(np.float32(0)), dims)
        if op.get_output_element_type(0) != ov.Type.f32:
            init = ops.convert(init, op.get_output_element_type(0))
        replacement = ov.op.read_value(init.output(0), variables[op.get_variable_id()])
        replacement.set_friendly_name(op.get_friendly_name())
        for target in list(op.output(0).get_target_inputs()):
            target.replace_source_output(replacement.output(0))
