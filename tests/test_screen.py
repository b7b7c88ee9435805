"""Display detection and monitor choice (pure), and a real screenshot from Xvfb."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.screen.capture import Monitor, ScreenCaptureUnavailable, _pick_monitor, capture_screen
from assistant.screen.display import DisplayServer, detect_display_server

from facilities import xvfb


@pytest.mark.parametrize(
    ("env", "platform", "kind"),
    [
        ({}, "linux", "none"),
        ({"DISPLAY": ":1"}, "linux", "x11"),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux", "wayland"),
        ({"XDG_SESSION_TYPE": "wayland"}, "linux", "wayland"),
        ({}, "win32", "windows"),
        ({}, "darwin", "macos"),
    ],
)
def test_display_server_detection(env, platform, kind):
    assert detect_display_server(env, platform).kind == kind


MONITORS = [Monitor(1, 0, 0, 1920, 1080), Monitor(2, 1920, 0, 1280, 1024)]


def test_monitor_choice():
    assert _pick_monitor(MONITORS, 2, None).index == 2
    assert _pick_monitor(MONITORS, "pointer", (2000, 500)).index == 2
    assert _pick_monitor(MONITORS, "pointer", (5, 5)).index == 1
    assert _pick_monitor(MONITORS, "pointer", None).index == 1
    with pytest.raises(ScreenCaptureUnavailable, match="monitor 3 does not exist"):
        _pick_monitor(MONITORS, 3, None)


def test_no_display_is_a_clear_error():
    with pytest.raises(ScreenCaptureUnavailable, match="no display"):
        capture_screen(display=DisplayServer("none", ""))


@pytest.mark.slow
def test_screenshot_of_a_known_picture_on_xvfb():
    from Xlib import display as xdisplay

    with xvfb(640, 480) as name:
        d = xdisplay.Display(name)
        root = d.screen().root
        colormap = d.screen().default_colormap
        red = colormap.alloc_color(65535, 0, 0).pixel
        gc = root.create_gc(foreground=red)
        root.fill_rectangle(gc, 100, 50, 200, 100)  # a red box at a known place
        d.sync()
        shot = capture_screen("pointer", DisplayServer("x11", name))
        everything = capture_screen("all", DisplayServer("x11", name))
        d.close()
    assert shot.size == (640, 480) and everything.size == (640, 480)
    assert shot.mode == "RGB"
    assert shot.getpixel((150, 100)) == (255, 0, 0)
    assert shot.getpixel((10, 10)) != (255, 0, 0)
    assert shot.getpixel((299, 149)) == (255, 0, 0) and shot.getpixel((300, 150)) != (255, 0, 0)


# -- Wayland: the screenshot portal over D-Bus (a stand-in portal service on a private session bus) --


def test_portal_request_path_follows_the_spec():
    from assistant.screen.portal import file_of, request_path

    assert request_path(":1.42", "tok") == "/org/freedesktop/portal/desktop/request/1_42/tok"
    assert str(file_of("file:///tmp/My%20Shot.png")) == "/tmp/My Shot.png"


@pytest.fixture
def portal(tmp_path, monkeypatch):
    """A session bus with the stand-in portal answering with a known picture; a Wayland session."""
    import select
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from facilities import _stop, session_bus

    picture = tmp_path / "screen.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (90, 160, 3), dtype=np.uint8)).save(picture)

    def start(*args: str):
        script = Path(__file__).with_name("fake_portal.py")
        proc = subprocess.Popen(
            [sys.executable, str(script), str(picture), str(tmp_path), *args], stdout=subprocess.PIPE, text=True
        )
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready and proc.stdout.readline().strip() == "ready"
        return proc

    with session_bus() as bus:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus)
        monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-test")
        monkeypatch.setenv("PATH", "/nonexistent")  # no grim to fall back on
        procs = []

        def started(*args: str):
            procs.append(start(*args))
            return procs[-1]

        yield picture, started
        for proc in procs:
            _stop(proc)


@pytest.mark.slow
def test_wayland_screenshot_through_the_portal_is_kept_in_memory_only(portal):
    import numpy as np
    from PIL import Image

    picture, start = portal
    proc = start()
    shot = capture_screen()
    assert np.array_equal(np.asarray(shot), np.asarray(Image.open(picture).convert("RGB")))
    written = proc.stdout.readline().split(" ", 1)[1].strip()
    assert written.endswith(".png")
    assert not Path(written).exists()  # the portal's file was read and deleted


@pytest.mark.slow
def test_a_refused_portal_screenshot_is_a_clear_error(portal):
    _, start = portal
    start("deny")
    with pytest.raises(ScreenCaptureUnavailable, match="portal gave no picture: the request was cancelled"):
        capture_screen()


@pytest.mark.slow
def test_no_portal_and_no_grim_says_what_to_install(portal):
    with pytest.raises(ScreenCaptureUnavailable, match="xdg-desktop-portal") as error:
        capture_screen()
    assert "grim" in str(error.value) and "\n" not in str(error.value)
