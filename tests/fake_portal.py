"""A stand-in for xdg-desktop-portal's Screenshot interface on a test's session bus:
`python fake_portal.py PNG OUT_DIR [deny]`. It answers Screenshot like the real portal does (a request
object, then its Response signal with a file URI); the "screenshot" is a copy of PNG."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from gi.repository import Gio, GLib

XML = """
<node>
  <interface name="org.freedesktop.portal.Screenshot">
    <method name="Screenshot">
      <arg type="s" name="parent_window" direction="in"/>
      <arg type="a{sv}" name="options" direction="in"/>
      <arg type="o" name="handle" direction="out"/>
    </method>
  </interface>
</node>
"""


def main() -> None:
    picture, out_dir, deny = Path(sys.argv[1]), Path(sys.argv[2]), "deny" in sys.argv[3:]
    loop = GLib.MainLoop()

    def on_call(connection, sender, path, interface, method, parameters, invocation) -> None:
        _, options = parameters.unpack()
        token = options.get("handle_token", "t")
        handle = f"/org/freedesktop/portal/desktop/request/{sender[1:].replace('.', '_')}/{token}"
        invocation.return_value(GLib.Variant("(o)", (handle,)))
        shot = out_dir / f"Screenshot-{token}.png"
        shutil.copy(picture, shot)
        results = {} if deny else {"uri": GLib.Variant("s", shot.as_uri())}
        connection.emit_signal(
            sender,
            handle,
            "org.freedesktop.portal.Request",
            "Response",
            GLib.Variant("(ua{sv})", (1 if deny else 0, results)),
        )
        print(f"answered {shot}", flush=True)

    def on_bus(connection, name) -> None:
        info = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]
        connection.register_object("/org/freedesktop/portal/desktop", info, on_call, None, None)

    Gio.bus_own_name(
        Gio.BusType.SESSION,
        "org.freedesktop.portal.Desktop",
        Gio.BusNameOwnerFlags.NONE,
        on_bus,
        lambda c, n: print("ready", flush=True),
        lambda c, n: loop.quit(),
    )
    loop.run()


if __name__ == "__main__":
    main()
