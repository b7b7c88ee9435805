"""A local, private desktop voice assistant on Qwen2-Audio and Qwen2-VL through OpenVINO."""

import os
import sys

__version__ = "0.1.0"

# Nothing leaves the machine. OpenVINO's model converter and NNCF send usage telemetry unless a
# consent file says no; both fall back to a silent stub when `openvino_telemetry` cannot be
# imported, so it is made unimportable in every assistant process (children included).
sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
