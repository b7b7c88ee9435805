"""Model folders that pass the manifest check, for tests of code that only checks structure."""

from __future__ import annotations

from assistant.models.manifest import REQUIRED_SUBMODELS, Manifest, SubModel, write_manifest


def make_folder(folder, kind="qwen2-vl", size=64):
    folder.mkdir(parents=True, exist_ok=True)
    subs = []
    for name in REQUIRED_SUBMODELS[kind]:
        (folder / f"{name}.xml").write_text("<net/>")
        (folder / f"{name}.bin").write_bytes(b"\0" * size)
        subs.append(SubModel(name, f"{name}.xml", f"{name}.bin", size))
    manifest = Manifest(
        kind=kind,
        source="tiny",
        revision=None,
        compression={"mode": "int4_asym"},
        submodels=tuple(subs),
        versions={"openvino": "x"},
    )
    write_manifest(folder, manifest)
    return manifest
