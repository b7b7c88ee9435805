"""The tray icon: which backend shows it where (pure), how each state looks, and a real icon in a real
system tray (Xvfb + trayer + a session bus) whose menu is clicked with xdotool."""

from __future__ import annotations

import os
import sys
import time

import pytest

from assistant.daemon.state import Activity, State
from assistant.screen.display import DisplayServer
from assistant.tray.icon import STATE_COLOURS, TrayActions, TrayIcon, draw_icon
from assistant.tray.probe import choose_backends, has_session_bus

from facilities import click_tray_menu_item, require, session_bus, tray_host, xvfb

X11 = DisplayServer("x11", ":0")
WAYLAND = DisplayServer("wayland", "wayland-0")


@pytest.mark.parametrize(
    ("display", "backends", "xembed", "sni", "bus", "expected"),
    [
        (DisplayServer("none", ""), ("gtk", "xorg"), None, None, True, ()),
        (X11, ("gtk", "xorg"), True, False, True, ("gtk", "xorg")),
        (X11, ("gtk", "xorg"), True, False, False, ("xorg",)),  # GTK's icon needs the session bus
        (X11, ("appindicator", "gtk", "xorg"), True, True, True, ("appindicator",)),
        (X11, ("gtk", "xorg"), False, False, True, ()),  # no system tray on this X server
        (X11, (), True, None, True, ()),
        (WAYLAND, ("appindicator", "gtk"), None, True, True, ("appindicator",)),
        (WAYLAND, ("appindicator", "gtk"), None, False, True, ()),  # GNOME without the extension
        (WAYLAND, ("gtk", "xorg"), None, True, True, ()),
        (DisplayServer("windows", "desktop"), (), None, None, True, ("win32",)),
    ],
)
def test_backend_choice(display, backends, xembed, sni, bus, expected):
    chosen, why = choose_backends(display, backends, xembed, sni, bus)
    assert chosen == expected
    assert why


def test_headless_reasons_say_what_to_do():
    assert "extension" in choose_backends(WAYLAND, ("appindicator",), None, False)[1]
    assert "python3-gi" in choose_backends(X11, (), True, None)[1]


def test_session_bus_detection(tmp_path):
    assert has_session_bus({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"})
    assert not has_session_bus({"XDG_RUNTIME_DIR": str(tmp_path)})
    (tmp_path / "bus").touch()
    assert has_session_bus({"XDG_RUNTIME_DIR": str(tmp_path)})


def test_each_state_has_its_own_look():
    images = {state: draw_icon(state).tobytes() for state in State}
    assert len(set(images.values())) == len(State)
    for state in State:
        assert draw_icon(state).getpixel((8, 32))[:3] == STATE_COLOURS[state]


@pytest.mark.parametrize(
    ("activity", "state"),
    [
        (Activity(), State.IDLE),
        (Activity(hearing=True), State.LISTENING),
        (Activity(hearing=True, thinking=True), State.THINKING),
        (Activity(thinking=True, speaking=True), State.SPEAKING),
        (Activity(muted=True, thinking=True), State.MUTED),
        (Activity(muted=True, speaking=True), State.SPEAKING),  # what is being said can still be stopped
        (Activity(muted=True, speaking=True, microphone_lost=True), State.ERROR),
    ],
)
def test_the_state_shown_is_the_one_that_matters_most(activity, state):
    assert activity.state is state


@pytest.fixture
def desktop(monkeypatch):
    """An X server with a system tray and a session bus, as a desktop session has."""
    require("xdotool", "xwininfo")
    with xvfb() as display, session_bus() as bus, tray_host(display):
        monkeypatch.setenv("DISPLAY", display)
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus)
        yield display


@pytest.mark.slow
def test_a_real_icon_whose_menu_items_reach_the_loop(desktop):
    calls: list[str] = []
    names = ["talk", "toggle_mute", "ask_screen", "stop_speaking", "open_config", "quit"]
    actions = TrayActions(**{n: (lambda n=n: calls.append(n)) for n in names})
    dispatched = []
    tray = TrayIcon.start(actions, lambda fn: (dispatched.append(fn), fn()))
    try:
        assert tray is not None and tray.backend == "gtk"
        program = os.path.basename(sys.argv[0])  # GTK names the icon's window after the program
        time.sleep(0.3)
        for index, expected in [(1, "toggle_mute"), (2, "ask_screen"), (3, "stop_speaking"), (0, "talk")]:
            click_tray_menu_item(index, program)
            deadline = time.monotonic() + 5
            while calls[-1:] != [expected] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert calls[-1:] == [expected], calls
        assert len(dispatched) == len(calls)  # every click went through dispatch (the loop's call_soon_threadsafe)
        tray.show(State.MUTED, muted=True)
        assert [str(item.text) for item in tray.menu_items][1] == "Unmute"
    finally:
        if tray is not None:
            tray.stop()  # before the session bus goes: GLib ends a process whose bus closes


def test_no_tray_host_means_headless_with_one_reason(monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "tty")
    actions = TrayActions(*[lambda: None] * 6)
    with caplog.at_level("WARNING"):
        assert TrayIcon.start(actions, lambda fn: fn()) is None
    assert [r.getMessage() for r in caplog.records if "no tray icon" in r.getMessage()] == [
        "no tray icon: no display; running headless (use --no-tray to skip this check)"
    ]
