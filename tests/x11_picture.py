"""Show a picture on an X display until killed: `python x11_picture.py DISPLAY PNG X Y`.

A test's "known picture on the screen": an override-redirect window (no window manager needed)
holding the image at (X, Y), so a screenshot of that display contains it pixel for pixel.
"""

from __future__ import annotations

import sys

from PIL import Image
from Xlib import X, display


def main() -> None:
    name, path, x, y = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    image = Image.open(path).convert("RGB")
    d = display.Display(name)
    screen = d.screen()
    window = screen.root.create_window(
        x, y, image.width, image.height, 0, screen.root_depth, override_redirect=True, event_mask=X.ExposureMask
    )
    gc = window.create_gc()
    window.map()
    d.sync()
    print("shown", flush=True)
    while True:
        event = d.next_event()
        if event.type == X.Expose and event.count == 0:
            window.put_pil_image(gc, 0, 0, image)
            d.flush()


if __name__ == "__main__":
    main()
