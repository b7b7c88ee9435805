"""Screenshots on Wayland through the desktop portal (org.freedesktop.portal.Screenshot).

GNOME and KDE do not let clients read the screen; they take the screenshot themselves when
asked over D-Bus. The call returns a request object; the answer arrives later as its
Response signal, with the URI of a PNG the portal wrote. The picture is read into memory
and the file deleted, so screenshots still never stay on disk.
"""

from __future__ import annotations

import itertools
import logging
import os
from io import BytesIO
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image

log = logging.getLogger(__name__)

PORTAL = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
SCREENSHOT = "org.freedesktop.portal.Screenshot"
REQUEST = "org.freedesktop.portal.Request"
_tokens = itertools.count(1)


class PortalUnavailable(Exception):
    """The portal cannot be asked here (no PyGObject, no session bus, no portal service)."""


class PortalRefused(Exception):
    """The portal answered, but without a screenshot (the user said no, or it failed)."""


def request_path(unique_name: str, token: str) -> str:
    """Where the portal will put the request object for `token` (pure; per the portal's spec)."""
    sender = unique_name.lstrip(":").replace(".", "_")
    return f"/org/freedesktop/portal/desktop/request/{sender}/{token}"


def file_of(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise PortalRefused(f"the portal returned {uri!r}, not a file")
    return Path(unquote(parsed.path))


def capture_with_portal(timeout: float = 30.0) -> Image.Image:
    """Ask the portal for a non-interactive screenshot of the whole screen; the image in memory."""
    try:
        from gi.repository import Gio, GLib
    except ImportError:
        raise PortalUnavailable("PyGObject is not installed (python3-gi)") from None
    context = GLib.MainContext.new()
    context.push_thread_default()  # the Response signal is delivered here, not to the tray's GTK loop
    try:
        try:
            bus = Gio.DBusConnection.new_for_address_sync(
                Gio.dbus_address_get_for_bus_sync(Gio.BusType.SESSION, None),
                Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
                None,
                None,
            )
        except GLib.Error as exc:
            raise PortalUnavailable(f"no session bus ({exc.message})") from None
        try:
            return _ask(bus, context, timeout, Gio, GLib)
        finally:
            bus.close_sync(None)
    finally:
        context.pop_thread_default()


def _ask(bus, context, timeout: float, Gio, GLib) -> Image.Image:
    token = f"assistant_{os.getpid()}_{next(_tokens)}"
    path = request_path(bus.get_unique_name(), token)
    answer: dict = {}

    def on_response(connection, sender, object_path, interface, signal, parameters) -> None:
        code, results = parameters.unpack()
        answer["code"], answer["results"] = code, results

    # Subscribed (its match rule sent) before the call on the same connection: the answer cannot go unseen.
    subscription = bus.signal_subscribe(PORTAL, REQUEST, "Response", path, None, Gio.DBusSignalFlags.NONE, on_response)
    try:
        options = {"handle_token": GLib.Variant("s", token), "interactive": GLib.Variant("b", False)}
        try:
            bus.call_sync(
                PORTAL,
                PORTAL_PATH,
                SCREENSHOT,
                "Screenshot",
                GLib.Variant("(sa{sv})", ("", options)),
                GLib.VariantType.new("(o)"),
                Gio.DBusCallFlags.NONE,
                int(timeout * 1000),
                None,
            )
        except GLib.Error as exc:
            raise PortalUnavailable(f"the screenshot portal did not answer ({exc.message})") from None
        deadline = GLib.get_monotonic_time() + int(timeout * 1_000_000)
        while "code" not in answer:
            if GLib.get_monotonic_time() > deadline:
                raise PortalRefused(f"no screenshot from the portal within {timeout:g} s")
            context.iteration(False) or GLib.usleep(10_000)
    finally:
        bus.signal_unsubscribe(subscription)
    if answer["code"] != 0:
        reason = {1: "the request was cancelled (permission denied?)"}.get(answer["code"], "the portal failed")
        raise PortalRefused(reason)
    return _read_and_delete(file_of(answer["results"].get("uri", "")))


def _read_and_delete(path: Path) -> Image.Image:
    try:
        with path.open("rb") as f:
            image = Image.open(BytesIO(f.read())).convert("RGB")
    except OSError as exc:
        raise PortalRefused(f"cannot read the portal's screenshot {path} ({exc})") from None
    finally:
        try:
            path.unlink()
        except OSError as exc:  # the portal may keep it elsewhere; say so rather than fail
            log.warning("could not delete the portal's screenshot %s: %s", path, exc)
    return image
