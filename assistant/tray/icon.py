"""The tray icon: pystray in its own thread, showing the service's state, with a menu.

Menu clicks run on pystray's thread; each action is handed to the service's asyncio loop
through `dispatch` (loop.call_soon_threadsafe), so the service's state is only ever
changed on the loop. When there is no display, no tray host or no pystray backend, the
icon is not shown and the reason is logged once: the service runs headless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..daemon.state import State
from .probe import plan_tray

log = logging.getLogger(__name__)

# Fill colour of the round icon per state; muted and error also get a mark across.
STATE_COLOURS: dict[State, tuple[int, int, int]] = {
    State.IDLE: (120, 128, 140),
    State.LISTENING: (40, 170, 90),
    State.THINKING: (230, 160, 30),
    State.SPEAKING: (50, 120, 220),
    State.MUTED: (70, 70, 70),
    State.ERROR: (210, 50, 50),
}


@dataclass(frozen=True)
class TrayActions:
    """What the menu can ask of the service; called on the service's loop."""

    talk: Callable[[], None]
    toggle_mute: Callable[[], None]
    ask_screen: Callable[[], None]
    stop_speaking: Callable[[], None]
    open_config: Callable[[], None]
    quit: Callable[[], None]


def draw_icon(state: State, size: int = 64):
    """A round badge in the state's colour with a microphone; muted and error are struck through."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    u = size / 64
    draw.ellipse((2 * u, 2 * u, 62 * u, 62 * u), fill=(*STATE_COLOURS[state], 255))
    white = (255, 255, 255, 255)
    draw.rounded_rectangle((25 * u, 12 * u, 39 * u, 38 * u), radius=7 * u, fill=white)  # microphone head
    draw.arc((19 * u, 22 * u, 45 * u, 46 * u), 0, 180, fill=white, width=max(1, round(3 * u)))
    draw.line((32 * u, 46 * u, 32 * u, 53 * u), fill=white, width=max(1, round(3 * u)))
    if state in (State.MUTED, State.ERROR):
        draw.line((14 * u, 50 * u, 50 * u, 14 * u), fill=white, width=max(1, round(5 * u)))
    return image


class TrayIcon:
    """One pystray icon; `show(state)` from any thread, `stop()` to remove it."""

    def __init__(self, actions: TrayActions, dispatch: Callable[[Callable[[], None]], None], backend: str):
        self.actions = actions
        self.dispatch = dispatch
        self.backend = backend
        self.state = State.IDLE
        self.muted = False
        self._icon = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, actions: TrayActions, dispatch: Callable[[Callable[[], None]], None]) -> TrayIcon | None:
        """Show the icon, or log why not (once) and return None."""
        plan = plan_tray()
        candidates, why = plan.backends, plan.why
        failures = []
        for backend in candidates:
            tray = cls(actions, dispatch, backend)
            try:
                tray._start()
            except Exception as exc:  # a broken backend must not stop the service; try the next
                failures.append(f"the {backend} backend failed: {str(exc).splitlines()[0] if str(exc) else exc!r}")
                log.debug("tray backend %s failed", backend, exc_info=True)
                continue
            if backend == "xorg":
                log.warning("tray icon without a menu (pystray's xorg backend): %s", why)
            for failure in failures:
                log.info("tray: %s", failure)
            log.info("tray icon shown (%s backend, %s)", backend, why)
            return tray
        reason = "; ".join(failures) or why
        log.warning("no tray icon: %s; running headless (use --no-tray to skip this check)", reason)
        return None

    def _start(self) -> None:
        import importlib

        import pystray  # Menu and MenuItem are the same for every backend

        module = importlib.import_module(f"pystray._{self.backend}")  # this backend, not pystray's first pick
        self._icon = module.Icon("assistant", draw_icon(self.state), "Assistant", menu=self._menu(pystray))
        failed: list[BaseException] = []

        def run() -> None:
            try:
                self._icon.run(setup=setup)
            except BaseException as exc:  # reported to _start, which tries another backend
                failed.append(exc)
                self._ready.set()

        def setup(icon) -> None:
            icon.visible = True
            self._ready.set()

        self._thread = threading.Thread(target=run, name="tray", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the icon did not appear within 10 s")
        if failed:
            self._icon = None
            raise failed[0]

    def _menu(self, pystray):
        def item(text, action: Callable[[], None], **kw):
            return pystray.MenuItem(text, lambda icon, it: self.dispatch(action), **kw)

        return pystray.Menu(
            item("Talk now", self.actions.talk, default=True),
            item(lambda it: "Unmute" if self.muted else "Mute", self.actions.toggle_mute),
            item("Ask about the screen", self.actions.ask_screen),
            item("Stop speaking", self.actions.stop_speaking),
            pystray.Menu.SEPARATOR,
            item("Open config", self.actions.open_config),
            item("Quit", self.actions.quit),
        )

    @property
    def menu_items(self) -> list:
        """The menu's items (for tests and for backends that need them)."""
        return list(self._icon.menu.items) if self._icon is not None else []

    def show(self, state: State, muted: bool) -> None:
        if self._icon is None:
            return
        changed_mute = muted != self.muted
        self.state, self.muted = state, muted
        self._icon.icon = draw_icon(state)
        self._icon.title = f"Assistant: {state.value}"
        if changed_mute:
            self._icon.update_menu()

    def stop(self) -> None:
        if self._icon is not None:
            try:
                self._icon.stop()
            except Exception as exc:  # already gone with its display
                log.debug("tray stop: %s", exc)
            if self._thread is not None:
                self._thread.join(2)
            self._icon = None
