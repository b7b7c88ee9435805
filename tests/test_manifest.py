"""The manifest marks a converted model folder as complete; anything else is refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.models.manifest import InvalidModelFolder, check_model_folders, read_manifest

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


def test_an_empty_folder_is_not_converted_yet_and_needs_no_force(tmp_path):
    (tmp_path / "audio").mkdir()
    with pytest.raises(InvalidModelFolder, match=r"no converted Qwen2-Audio model .*assistant convert audio$"):
        read_manifest(tmp_path / "audio", "qwen2-audio")


@pytest.mark.parametrize("empty", [False, True])
def test_neither_model_converted_is_one_error_naming_convert_all(tmp_path, empty):
    audio, vl = tmp_path / "models" / "audio-ov", tmp_path / "models" / "vl-ov"
    if empty:
        audio.mkdir(parents=True)
        vl.mkdir()
    with pytest.raises(InvalidModelFolder) as err:
        check_model_folders(audio, vl)
    assert str(err.value) == f"no converted models yet in {audio.parent} (audio-ov, vl-ov); run: assistant convert all"
    # Folders in two places are both named; the --config FILE they came from goes into the command.
    with pytest.raises(InvalidModelFolder) as err:
        check_model_folders(audio, tmp_path / "vl-ov", config=Path("/x/c.toml"))
    message = str(err.value)
    assert f"(Qwen2-Audio: {audio}, Qwen2-VL: {tmp_path / 'vl-ov'})" in message
    assert message.endswith("; run: assistant convert all --config /x/c.toml")


def test_one_model_missing_names_its_own_convert_command(tmp_path):
    make_folder(tmp_path / "audio", kind="qwen2-audio")
    make_folder(tmp_path / "vl", kind="qwen2-vl")
    assert check_model_folders(tmp_path / "audio", tmp_path / "vl") is None
    # Without Qwen2-VL the assistant still runs (screen questions off): the problem is returned, not raised.
    problem = check_model_folders(tmp_path / "audio", tmp_path / "no-vl")
    assert problem is not None and str(problem).endswith("run: assistant convert vl")
    with pytest.raises(InvalidModelFolder, match=r"no converted Qwen2-Audio model .*run: assistant convert audio$"):
        check_model_folders(tmp_path / "no-audio", tmp_path / "vl")
    # Both there but the audio one unfinished: its own, more precise error, not "convert all".
    (tmp_path / "audio" / "manifest.json").unlink()
    with pytest.raises(InvalidModelFolder, match="convert audio --force"):
        check_model_folders(tmp_path / "audio", tmp_path / "no-vl")


def _set(folder, key, value):
    data = json.loads((folder / "manifest.json").read_text())
    data[key] = value
    (folder / "manifest.json").write_text(json.dumps(data))


def _drop_submodel(folder, name):
    data = json.loads((folder / "manifest.json").read_text())
    del data["submodels"][name]
    (folder / "manifest.json").write_text(json.dumps(data))
