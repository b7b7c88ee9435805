"""Display detection and monitor choice (pure), and a real screenshot from Xvfb."""

from __future__ import annotations

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
