"""The PyTorch side of a conversion: load the checkpoint, trace each sub-model, save its IR.

It runs in a child process (`run_export`), one sub-model at a time: each encoder is cast to
f32, traced, saved and dropped; the language model is traced last from its bf16 weights
made 16-bit traceable.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ...errors import AssistantError, UsageError
from .compression import compress_weights, widen_embedding_tables

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Tracing warns about every data-dependent branch of transformers (all expected here) and
    about torch.jit's deprecation; keep the user's progress output readable."""
    import torch
    from transformers.utils import logging as transformers_logging

    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime" on CPU machines
    transformers_logging.set_verbosity_error()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


@contextlib.contextmanager
def _caller_script_not_rerun() -> Iterator[None]:
    """A spawned child normally re-runs the parent's main script to rebuild its module; a user's
    script that converts at top level (as the article does, with no `if __name__ == "__main__"`)
    would then convert again inside the child and fail. The child needs only this package."""
    main = sys.modules.get("__main__")
    hidden = main is not None and getattr(main.__spec__, "name", None) is None and hasattr(main, "__file__")
    saved = main.__file__ if hidden else None
    if hidden:
        del main.__file__
    try:
        yield
    finally:
        if hidden:
            main.__file__ = saved


def run_export(
    kind: str, source: Path, staging: Path, encoder_weights: str, full_precision: bool, say: Callable[[str], None]
) -> None:
    """Export every sub-model of `source` into `staging`, in a child process; relay its progress."""
    context = multiprocessing.get_context("spawn")
    # A pipe, not a Queue: a Queue's named semaphore outlives a child that dies mid-export and
    # makes the resource tracker print warnings after our one-line error.
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_export_in_child,
        args=(kind, str(source), str(staging), encoder_weights, full_precision, sender),
        name="assistant-convert-export",
    )
    with _caller_script_not_rerun():
        child.start()
    sender.close()  # the child holds its own copy; EOF on the receiver then means it is gone
    finished = False
    try:
        while True:
            if not receiver.poll(0.5):
                if not child.is_alive() and not receiver.poll(0):
                    raise AssistantError(
                        f"the export process died (exit code {child.exitcode}); out of memory? "
                        "close other programs and run again"
                    ) from None
                continue
            try:
                message = receiver.recv()
            except EOFError:
                raise AssistantError(
                    f"the export process died (exit code {child.exitcode}); out of memory? "
                    "close other programs and run again"
                ) from None
            if message[0] == "progress":
                say(message[1])
                continue
            finished = True  # "done" or "error": the child is leaving on its own
            if message[0] == "done":
                return
            _, usage, text = message
            raise (UsageError if usage else AssistantError)(text)
    finally:
        if finished:
            child.join(timeout=120)  # let it exit by itself, so its locks and files are cleaned up
        elif child.is_alive():
            os.kill(child.pid, signal.SIGINT)  # interrupted: let it unwind before anything harsher
            child.join(timeout=15)
        if child.is_alive():
            child.terminate()
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
            child.join()
        receiver.close()


def _export_in_child(
    kind: str, source: str, staging: str, encoder_weights: str, full_precision: bool, messages: Any
) -> None:
    from .pipeline import _recipe

    try:
        with _quiet_tracing():
            _export_each(
                _recipe(kind),
                Path(source),
                Path(staging),
                encoder_weights,
                full_precision,
                lambda text: messages.send(("progress", text)),
            )
        messages.send(("done",))
    except KeyboardInterrupt:
        messages.send(("error", False, "interrupted"))
    except UsageError as exc:
        messages.send(("error", True, str(exc)))
    except BaseException as exc:  # everything else reaches the parent as one line
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        messages.send(("error", False, f"export failed: {type(exc).__name__}: {detail}"))


def _export_each(
    recipe, source: Path, staging: Path, encoder_weights: str, full_precision: bool, say: Callable[[str], None]
) -> None:
    import torch

    say(f"loading the checkpoint {source} ({'f32' if full_precision else 'bf16'})")
    model = recipe.load_torch_model(source, torch.float32 if full_precision else torch.bfloat16)
    order = [s for s in recipe.SUBMODELS if s.role != "language_model"]
    order += [s for s in recipe.SUBMODELS if s.role == "language_model"]
    for spec in order:
        say(f"exporting {spec.name}")
        t0 = time.monotonic()
        if spec.role == "language_model":
            _export_language_model(model, spec, staging, full_precision)
        else:
            _export_encoder_like(model, spec, staging, encoder_weights)
        size = (staging / spec.filename).with_suffix(".bin").stat().st_size
        say(f"  {spec.name}: {size / 2**20:.1f} MiB in {time.monotonic() - t0:.1f} s")


def release_memory() -> None:
    """Collect, then hand freed heap back to the OS (glibc keeps it otherwise), so the next
    stage's peak does not stack on top of the last one's."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _export_encoder_like(model, spec, staging: Path, encoder_weights: str) -> None:
    import openvino as ov

    if spec.role == "encoder":
        spec.module(model).float()  # f32 tracing gives exact graphs; the stored precision is chosen below
    # The embedding table is traced as it is: it may be tied to the output head, which must stay
    # 16-bit for the language model's export.
    ov_model = spec.export(model)
    if encoder_weights == "int8":
        import nncf

        if spec.role == "embeddings":
            ov_model = widen_embedding_tables(ov_model)
        ov_model = compress_weights(ov_model, {"mode": nncf.CompressWeightsMode.INT8_ASYM})
    ov.save_model(ov_model, staging / spec.filename, compress_to_fp16=encoder_weights == "fp16")
    del ov_model
    if spec.free_after:  # saved: give its memory to the language model's export
        spec.free(model)
    release_memory()


def _export_language_model(model, spec, staging: Path, full_precision: bool) -> None:
    import openvino as ov

    if not full_precision:
        from openvino.frontend.pytorch.patch_model import __make_16bit_traceable as make_16bit_traceable

        # Traced as plain bf16, the runtime would expand INT4 weights back to bf16 (slow, huge);
        # patched, the graph computes in f32 over 16-bit weight constants. (Not unpatched: this
        # process ends after the export.)
        make_16bit_traceable(model.model.language_model)
        make_16bit_traceable(model.lm_head)
    ov_model = spec.export(model)
    ov.save_model(ov_model, staging / spec.filename, compress_to_fp16=False)
