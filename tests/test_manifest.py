"""The manifest marks a converted model folder as complete; anything else is refused clearly."""

from __future__ import annotations

import json

import pytest

from assistant.models.manifest import InvalidModelFolder, read_manifest

from model_folders import make_folder


def test_round_trip(tmp_path):
    written = make_folder(tmp_path / "vl")
    read = read_manifest(tmp_path / "vl", "qwen2-vl")
    assert read == written
    assert read.weight_bytes == 64 * 4
    assert not list((tmp_path / "vl").glob("*.tmp"))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda f: None, None),
        (lambda f: (f / "manifest.json").unlink(), "no manifest.json"),
        (lambda f: (f / "manifest.json").write_text("{not json"), "is damaged"),
        (lambda f: (f / "text_embeddings.bin").unlink(), "lacks text_embeddings.bin"),
        (lambda f: (f / "language_model.bin").write_bytes(b"\0"), "wrong size"),
        (lambda f: _drop_submodel(f, "image_embedding"), "lacks sub-models image_embedding"),
        (lambda f: _set(f, "format", 99), "manifest format 99"),
    ],
)
def test_damaged_folders_are_refused_naming_the_convert_command(tmp_path, damage, expected):
    folder = tmp_path / "vl"
    make_folder(folder)
    damage(folder)
    if expected is None:
        read_manifest(folder, "qwen2-vl")
        return
    with pytest.raises(InvalidModelFolder) as err:
        read_manifest(folder, "qwen2-vl")
    assert expected in str(err.value)
    assert "assistant convert vl" in str(err.value)


def test_missing_folder_and_wrong_kind(tmp_path):
    with pytest.raises(InvalidModelFolder, match=r"no converted Qwen2-Audio model .* assistant convert audio"):
        read_manifest(tmp_path / "absent", "qwen2-audio")
    make_folder(tmp_path / "vl")
    with pytest.raises(InvalidModelFolder, match="holds a qwen2-vl model, not qwen2-audio"):
        read_manifest(tmp_path / "vl", "qwen2-audio")


def _set(folder, key, value):
    data = json.loads((folder / "manifest.json").read_text())
    data[key] = value
    (folder / "manifest.json").write_text(json.dumps(data))


def _drop_submodel(folder, name):
    data = json.loads((folder / "manifest.json").read_text())
    del data["submodels"][name]
    (folder / "manifest.json").write_text(json.dumps(data))
