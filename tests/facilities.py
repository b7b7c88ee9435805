"""Real OS facilities for tests, started by the tests themselves and stopped by PID.

- `xvfb()`: an X server on a free display number (Xvfb -displayfd), DISPLAY for it.
- `tray_host(display)`: trayer, an X11 system tray, on that display.
- `session_bus()`: a private D-Bus session bus, which GTK's tray icon needs.
- `pulse_virtual_mic()`: a private PulseAudio server with a 16 kHz mono null sink whose
  monitor is the default source; audio played into the sink is what the "microphone" hears.
- `small_disk(path, size)`: a tmpfs of that size mounted at `path` (a disk that fills up).
- `memory_cgroup(limit)`: a memory cgroup with that limit; commands run inside it with its `wrap`.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def require(*programs: str) -> None:
    """Skip outside CI when a system program is missing; in CI a missing program is a failure."""
    missing = [p for p in programs if shutil.which(p) is None]
    if not missing:
        return
    message = f"missing system programs: {', '.join(missing)} (install with: bash scripts/install.sh --test)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


@contextlib.contextmanager
def xvfb(width: int = 1280, height: int = 720) -> Iterator[str]:
    """Start Xvfb; yield its DISPLAY string (":N")."""
    require("Xvfb")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24", "-noreset", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 15)
        number = os.read(read_fd, 64).decode().strip() if ready else ""
        if not number:
            raise RuntimeError("Xvfb did not report a display number")
        yield f":{number}"
    finally:
        os.close(read_fd)
        _stop(proc)


@contextlib.contextmanager
def tray_host(display: str) -> Iterator[subprocess.Popen]:
    """Start trayer on `display` and wait until it owns the system-tray selection."""
    require("trayer")
    from assistant.tray.probe import x11_tray_host

    env = {**os.environ, "DISPLAY": display}
    proc = subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--height", "24"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: x11_tray_host(display) is True, 10, "trayer to own the system tray")
        yield proc
    finally:
        _stop(proc)


@contextlib.contextmanager
def session_bus() -> Iterator[str]:
    """A private D-Bus session bus (what a desktop session has); yields DBUS_SESSION_BUS_ADDRESS."""
    require("dbus-daemon")
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        address = proc.stdout.readline().strip() if ready else ""
        if not address:
            raise RuntimeError("dbus-daemon did not print its address")
        yield address
    finally:
        _stop(proc)


def tray_icon_geometry(program: str | None = None, display: str | None = None) -> tuple[int, int, int, int]:
    """Where trayer shows an icon (the one of `program`, or the only one): width, height, x, y."""
    env = {**os.environ, **({"DISPLAY": display} if display else {})}
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True, check=True, env=env).stdout
    lines = tree.splitlines()
    top = next(i for i, line in enumerate(lines) if '"panel"' in line)
    depth = len(lines[top]) - len(lines[top].lstrip())
    below = [line for line in lines[top + 1 :]]
    end = next((i for i, line in enumerate(below) if line.strip() and len(line) - len(line.lstrip()) <= depth), None)
    panel = "\n".join(below[:end])  # trayer's panel and the windows inside it
    name = re.escape(program) if program else r"[^\"]+"
    found = re.findall(rf'0x[0-9a-f]+ "({name})".*?(\d+)x(\d+)\+-?\d+\+-?\d+\s+\+(\d+)\+(\d+)', panel)
    icons = [tuple(map(int, f[1:])) for f in found if int(f[1]) > 1]
    assert len(icons) == 1, f"expected one tray icon{f' of {program}' if program else ''}:\n{panel}"
    return icons[0]


def click_tray_menu_item(index: int, program: str | None = None, display: str | None = None) -> None:
    """Right-click the tray icon and choose its menu's item number `index` (0 = first) with the keyboard."""
    env = {**os.environ, **({"DISPLAY": display} if display else {})}
    w, h, x, y = tray_icon_geometry(program, display)
    subprocess.run(["xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "3"], check=True, env=env)
    time.sleep(0.4)  # the menu pops up
    subprocess.run(["xdotool", "key", *["Down"] * (index + 1), "Return"], check=True, env=env)


@contextlib.contextmanager
def picture_on_screen(display: str, image_path: Path, x: int = 0, y: int = 0) -> Iterator[None]:
    """Show a picture at (x, y) on `display` (a window without a window manager) until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("x11_picture.py")), display, str(image_path), str(x), str(y)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        if not ready or proc.stdout.readline().strip() != "shown":
            raise RuntimeError(f"the picture was not shown: {proc.stderr.read() if proc.poll() is not None else ''}")
        time.sleep(0.3)  # the first Expose is drawn
        yield
    finally:
        _stop(proc)


@dataclass
class PulseServer:
    server: str  # PULSE_SERVER value
    sink: str  # play into this sink and the microphone hears it
    source: str  # the default source (the sink's monitor)
    speaker: str | None = None  # the default sink when there is one apart from the microphone's
    command: list[str] = field(default_factory=list)
    daemon_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def start_daemon(self) -> None:
        """Start (or restart, as after a crash) the server with its sinks, on the same socket."""
        self.proc = subprocess.Popen(
            self.command, env=self.daemon_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client_env = {**os.environ, **self.env()}
        proc = self.proc
        _wait_for(
            lambda: (
                proc.poll() is None
                and subprocess.run(["pactl", "info"], env=client_env, capture_output=True).returncode == 0
            ),
            15,
            "PulseAudio to accept clients",
        )
        subprocess.run(["pactl", "set-default-source", self.source], env=client_env, check=True)
        subprocess.run(["pactl", "set-default-sink", self.speaker or self.sink], env=client_env, check=True)

    def stop_daemon(self) -> None:
        """Stop the server: to its clients, every device is gone."""
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def env(self) -> dict[str, str]:
        return {"PULSE_SERVER": self.server}

    def play_into_microphone(self, wav: Path) -> None:
        """What the microphone hears: `wav` played into its sink, returning when played."""
        subprocess.run(["paplay", f"--device={self.sink}", str(wav)], env={**os.environ, **self.env()}, check=True)

    @contextlib.contextmanager
    def recording_speaker(self, wav: Path) -> Iterator[None]:
        """Record what is played on the speaker sink into `wav` (16 kHz mono) while the block runs."""
        assert self.speaker is not None, "start pulse_virtual_mic(speaker=...)"
        proc = subprocess.Popen(
            [
                "parecord",
                f"--device={self.speaker}.monitor",
                "--rate=16000",
                "--channels=1",
                "--file-format=wav",
                str(wav),
            ],
            env={**os.environ, **self.env()},
        )
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)  # parecord finishes the wav header on SIGINT
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                _stop(proc)


@contextlib.contextmanager
def pulse_virtual_mic(sink: str = "virtual_mic", speaker: str | None = None) -> Iterator[PulseServer]:
    """A private PulseAudio: `sink`'s monitor is the default microphone; with `speaker`, a second
    null sink is the default output, so what the assistant says can be recorded apart."""
    require("pulseaudio", "pactl")
    runtime = Path(tempfile.mkdtemp(prefix="assistant-pulse-"))
    socket = runtime / "native"
    server = PulseServer(server=f"unix:{socket}", sink=sink, source=f"{sink}.monitor", speaker=speaker)
    server.daemon_env = {**os.environ, "PULSE_RUNTIME_PATH": str(runtime), "HOME": str(runtime)}
    server.daemon_env.pop("PULSE_SERVER", None)
    server.command = [
        "pulseaudio",
        "-n",
        "--daemonize=no",
        "--exit-idle-time=-1",
        "--use-pid-file=no",
        "-L",
        f"module-native-protocol-unix socket={socket} auth-anonymous=1",
        "-L",
        f"module-null-sink sink_name={sink} rate=16000 channels=1 format=s16le",
        *(["-L", f"module-null-sink sink_name={speaker} rate=16000 channels=1 format=s16le"] if speaker else []),
        "-L",
        "module-always-sink",
    ]
    try:
        server.start_daemon()
        yield server
    finally:
        server.stop_daemon()
        shutil.rmtree(runtime, ignore_errors=True)


def _unavailable(message: str) -> None:
    """Skip where the machine cannot provide a facility; in CI that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "600k") at `path`, unmounted afterwards."""
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        _unavailable(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@dataclass
class MemoryCgroup:
    procs_file: Path

    def wrap(self, command: list[str]) -> list[str]:
        """`command` started inside the cgroup (the shell joins it, then becomes the command)."""
        return ["sh", "-c", f'echo $$ > "{self.procs_file}" && exec "$@"', "sh", *command]

    def figures(self) -> dict[str, int]:
        """What the limit did: the peak charged to the cgroup (page cache included), how often the limit
        was reached (the kernel then reclaims), and OOM kills; only the ones this kernel reports."""
        folder, out = self.procs_file.parent, {}
        for key, name in (("peak_bytes", "memory.max_usage_in_bytes"), ("limit_reached", "memory.failcnt")):
            with contextlib.suppress(OSError, ValueError):
                out[key] = int((folder / name).read_text())
        with contextlib.suppress(OSError, ValueError):
            for line in (folder / "memory.oom_control").read_text().splitlines():
                if line.startswith("oom_kill "):
                    out["oom_kills"] = int(line.split()[1])
        return out


@contextlib.contextmanager
def memory_cgroup(limit_bytes: int) -> Iterator[MemoryCgroup]:
    """A memory cgroup (v1 `memory.limit_in_bytes`, else v2 `memory.max`) of its own, removed afterwards."""
    name = f"assistant-test-{os.getpid()}-{time.monotonic_ns()}"
    v1, v2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
    if (v1 / "memory.limit_in_bytes").exists():
        folder, limit_file = v1 / name, "memory.limit_in_bytes"
    elif (v2 / "cgroup.controllers").exists() and "memory" in (v2 / "cgroup.controllers").read_text():
        folder, limit_file = v2 / name, "memory.max"
    else:
        _unavailable("no writable memory cgroup on this machine")
    try:
        folder.mkdir()
        (folder / limit_file).write_text(str(limit_bytes))
    except OSError as exc:
        _unavailable(f"cannot make a memory cgroup here ({exc})")
    try:
        yield MemoryCgroup(folder / "cgroup.procs")
    finally:
        for _ in range(50):  # its processes have exited; the kernel removes it once they are gone
            try:
                folder.rmdir()
                break
            except OSError:
                time.sleep(0.1)
