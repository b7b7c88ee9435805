"""OpenVINO devices on this machine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpenVINODevice:
    name: str
    full_name: str


def list_openvino_devices() -> list[OpenVINODevice]:
    import openvino

    core = openvino.Core()
    devices = []
    for name in core.available_devices:
        try:
            full_name = str(core.get_property(name, "FULL_DEVICE_NAME"))
        except Exception:  # a device may refuse property queries; its name is still useful
            full_name = name
        devices.append(OpenVINODevice(name=name, full_name=full_name))
    return devices


def openvino_version() -> str:
    import openvino

    return openvino.get_version()
