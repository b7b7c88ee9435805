"""Login integration: the generated files pass the real validators, install/uninstall are exact and safe,
and the readiness message reaches a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import plistlib
import shutil
import socket
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from assistant.errors import UsageError
from assistant.login import CommandResult, Interpreter, Kind, default_kind, install, status, target_path, uninstall
from assistant.login.marker import Ownership, add_header, ownership
from assistant.login.notify import notify_extend_timeout, notify_ready, notify_stopping, watchdog_interval
from assistant.login.process import is_assistant_run
from assistant.login.templates import desktop_exec_quote, systemd_quote

from cli_runner import headless_env, run_cli
from facilities import require

TASK_NS = "{http://schemas.microsoft.com/windows/2004/02/mit/task}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def env(home: Path, tmp_path: Path) -> dict[str, str]:
    """A private HOME and runtime dir; no session bus, so systemctl cannot reach a real user manager."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = headless_env(home, XDG_RUNTIME_DIR=str(runtime))
    for name in ("DBUS_SESSION_BUS_ADDRESS", "NOTIFY_SOCKET", "LOCALAPPDATA", "USERPROFILE"):
        env.pop(name, None)
    return env


def snapshot(root: Path) -> dict[str, object]:
    """Every folder, file (with contents) and symlink (with target) under root."""
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir",)
        else:
            found[rel] = ("file", path.read_bytes(), path.stat().st_mode)
    return found


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("service", *args, env=env, timeout=60)


def installed_text(kind: Kind, env: dict[str, str]) -> str:
    return target_path(kind, env).read_text(encoding=kind.spec.encoding)


# --- the generated files, checked by the real tools ---------------------------------------------------


def test_systemd_unit_passes_systemd_analyze_verify(env):
    require("systemd-analyze")
    done = cli(env, "install", "--kind", "systemd")
    assert done.returncode == 0, done.stderr
    unit = target_path(Kind.SYSTEMD, env)
    text = unit.read_text()
    for line in (
        "PartOf=graphical-session.target",
        "After=graphical-session.target",
        "WantedBy=graphical-session.target",
        "Restart=on-failure",
        "StartLimitIntervalSec=300",
        "StartLimitBurst=5",
        "Type=notify",
        "NotifyAccess=main",
        "TimeoutStopSec=5",
        f"ExecStart={sys.executable} -m assistant run",
    ):
        assert line in text.splitlines(), line
    assert "DISPLAY" not in "".join(ln for ln in text.splitlines() if ln.startswith("Environment="))
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--user", str(unit)], env=env, capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr


def test_desktop_entry_passes_desktop_file_validate(env):
    require("desktop-file-validate")
    done = cli(env, "install", "--kind", "autostart")
    assert done.returncode == 0, done.stderr
    entry = target_path(Kind.AUTOSTART, env)
    lines = entry.read_text().splitlines()
    assert "X-GNOME-Autostart-enabled=true" in lines and "Terminal=false" in lines
    assert f"Exec={sys.executable} -m assistant run" in lines
    check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and check.stdout == "" and check.stderr == "", check.stdout + check.stderr


def test_launch_agent_plist_has_the_keys(env, home):
    done = cli(env, "install", "--kind", "launchd")
    assert done.returncode == 0, done.stderr
    agent = plistlib.loads(target_path(Kind.LAUNCHD, env).read_bytes())
    assert agent["Label"] == "com.assistant"
    assert agent["ProgramArguments"] == [sys.executable, "-m", "assistant", "run"]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["StandardOutPath"].startswith(str(home / "Library" / "Logs") + "/")
    assert agent["StandardErrorPath"].startswith(str(home / "Library" / "Logs") + "/")
    assert target_path(Kind.LAUNCHD, env).parent == home / "Library" / "LaunchAgents"


def test_windows_logon_task_is_well_formed(env, home):
    env = dict(env, USERDOMAIN="PC", USERNAME="me")
    done = cli(env, "install", "--kind", "windows")
    assert done.returncode == 0, done.stderr
    path = target_path(Kind.WINDOWS, env)
    assert path.read_bytes()[:2] == b"\xff\xfe"  # UTF-16 with a byte-order mark, as Task Scheduler exports
    task = ET.parse(path).getroot()
    assert task.tag == f"{TASK_NS}Task"
    trigger = task.find(f"{TASK_NS}Triggers/{TASK_NS}LogonTrigger")
    assert trigger is not None and trigger.findtext(f"{TASK_NS}UserId") == "PC\\me"
    exec_ = task.find(f"{TASK_NS}Actions/{TASK_NS}Exec")
    assert exec_ is not None
    assert exec_.findtext(f"{TASK_NS}Command") == sys.executable  # pythonw.exe where it exists (Windows)
    assert exec_.findtext(f"{TASK_NS}Arguments") == "-m assistant run"
    assert task.findtext(f"{TASK_NS}Principals/{TASK_NS}Principal/{TASK_NS}LogonType") == "InteractiveToken"
    assert task.find(f"{TASK_NS}Settings/{TASK_NS}RestartOnFailure/{TASK_NS}Count") is not None


def test_windows_task_runs_pythonw_when_there_is_one(tmp_path, env):
    pythonw = tmp_path / "Program Files" / "pythonw.exe"
    install(Kind.WINDOWS, env=env, interpreter=Interpreter("python.exe", str(pythonw)), runner=_no_tools)
    task = ET.parse(target_path(Kind.WINDOWS, env)).getroot()
    assert task.findtext(f"{TASK_NS}Actions/{TASK_NS}Exec/{TASK_NS}Command") == f'"{pythonw}"'


def test_an_awkward_interpreter_path_is_quoted_for_each_format(tmp_path, env):
    require("systemd-analyze", "desktop-file-validate")
    odd = tmp_path / "my $envs" / "py 100%" / "python"
    odd.parent.mkdir(parents=True)
    odd.symlink_to(sys.executable)
    interpreter = Interpreter(str(odd))
    for kind in (Kind.SYSTEMD, Kind.LAUNCHD):
        install(kind, env=env, interpreter=interpreter, runner=_no_tools)
    unit = target_path(Kind.SYSTEMD, env)
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--user", str(unit)], env=env, capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    assert plistlib.loads(target_path(Kind.LAUNCHD, env).read_bytes())["ProgramArguments"][0] == str(odd)
    uninstall(Kind.SYSTEMD, env=env, runner=_no_tools)
    install(Kind.AUTOSTART, env=env, interpreter=interpreter, runner=_no_tools)
    check = subprocess.run(
        ["desktop-file-validate", str(target_path(Kind.AUTOSTART, env))], capture_output=True, text=True
    )
    assert check.returncode == 0 and check.stdout == "", check.stdout


def test_quoting_rules():
    assert systemd_quote("/usr/bin/python3") == "/usr/bin/python3"
    assert systemd_quote("/a b/py%$", command=True) == '"/a b/py%%$"'
    assert systemd_quote("$HOME") == '"$$HOME"'
    assert systemd_quote('/a"b') == '"/a\\"b"'
    assert desktop_exec_quote("/usr/bin/python3") == "/usr/bin/python3"
    # Quoted for the Exec rules (\$ inside quotes), then backslashes doubled for the string value.
    assert desktop_exec_quote("/a b/$x") == '"/a b/\\\\$x"'
    assert desktop_exec_quote("/a/100%") == "/a/100%%"


# --- install, status, uninstall ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [k.value for k in Kind])
def test_install_status_uninstall_leaves_home_as_it_was(kind, env, home):
    # Things that were there before must survive, including an empty folder install would also use.
    (home / ".config" / "autostart").mkdir(parents=True)
    (home / ".config" / "other.conf").write_text("keep me\n")
    (home / "Library").mkdir()
    before = snapshot(home)
    done = cli(env, "install", "--kind", kind)
    assert done.returncode == 0, done.stderr
    assert "wrote " in done.stdout
    assert snapshot(home) != before
    shown = cli(env, "status", "--kind", kind)
    assert shown.returncode == 0, shown.stderr
    row = next(line.split() for line in shown.stdout.splitlines() if line.startswith(kind))
    assert row[1] == "yes"
    if kind in ("systemd", "autostart"):
        assert row[2] == "yes"  # systemctl enable makes its symlink even without a running user manager
    removed = cli(env, "uninstall", "--kind", kind)
    assert removed.returncode == 0, removed.stderr
    assert snapshot(home) == before
    after = cli(env, "status", "--kind", kind)
    assert next(line.split() for line in after.stdout.splitlines() if line.startswith(kind))[1] == "no"


def test_systemd_enable_symlink_is_made_and_removed(env):
    require("systemctl")
    assert cli(env, "install", "--kind", "systemd").returncode == 0
    wants = target_path(Kind.SYSTEMD, env).parent / "graphical-session.target.wants" / "assistant.service"
    assert wants.is_symlink() and wants.resolve() == target_path(Kind.SYSTEMD, env).resolve()
    assert cli(env, "uninstall").returncode == 0  # without --kind: whatever install wrote
    assert not wants.parent.exists()


def test_install_twice_is_a_noop_that_says_so(env, home):
    first = cli(env, "install", "--kind", "autostart")
    assert first.returncode == 0, first.stderr
    path = target_path(Kind.AUTOSTART, env)
    before = snapshot(home)
    mtime = path.stat().st_mtime_ns
    second = cli(env, "install", "--kind", "autostart")
    assert second.returncode == 0, second.stderr
    assert "already installed, unchanged" in second.stdout and "wrote" not in second.stdout
    assert snapshot(home) == before and path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("kind", [k.value for k in Kind])
def test_a_foreign_file_is_left_alone_with_a_clear_error(kind, env):
    path = target_path(Kind(kind), env)
    path.parent.mkdir(parents=True)
    foreign = "my own file\n".encode(Kind(kind).spec.encoding)
    path.write_bytes(foreign)
    for action in ("install", "uninstall"):
        done = cli(env, action, "--kind", kind)
        assert done.returncode == 2, (action, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and "not written by 'assistant service install'" in done.stderr
        assert "left alone" in done.stderr
        assert path.read_bytes() == foreign
    assert done.stdout == ""
    row = next(line for line in cli(env, "status", "--kind", kind).stdout.splitlines() if line.startswith(kind))
    assert "foreign file" in row


def test_uninstall_without_kind_skips_nothing_it_wrote_and_nothing_else(env, home):
    assert cli(env, "install", "--kind", "launchd").returncode == 0
    assert cli(env, "install", "--kind", "autostart").returncode == 0
    done = cli(env, "uninstall")
    assert done.returncode == 0, done.stderr
    assert not target_path(Kind.LAUNCHD, env).exists() and not target_path(Kind.AUTOSTART, env).exists()
    assert snapshot(home) == {}
    again = cli(env, "uninstall")
    assert again.returncode == 0 and "nothing to uninstall" in again.stdout


def test_an_edited_file_is_not_overwritten(env):
    install(Kind.AUTOSTART, env=env, runner=_no_tools)
    path = target_path(Kind.AUTOSTART, env)
    path.write_text(path.read_text().replace("X-GNOME-Autostart-Delay=5", "X-GNOME-Autostart-Delay=30"))
    edited = path.read_text()
    with pytest.raises(UsageError, match="edited since"):
        install(Kind.AUTOSTART, env=env, runner=_no_tools)
    assert path.read_text() == edited
    assert status(Kind.AUTOSTART, env=env, runner=_no_tools).installed == "edited"
    outcome = uninstall(Kind.AUTOSTART, env=env, runner=_no_tools)
    assert not path.exists() and "edited" in outcome.lines[0]


def test_a_changed_interpreter_rewrites_the_file(env):
    install(Kind.LAUNCHD, env=env, runner=_no_tools)
    outcome = install(Kind.LAUNCHD, env=env, interpreter=Interpreter("/opt/other/python"), runner=_no_tools)
    assert outcome.changed
    assert plistlib.loads(target_path(Kind.LAUNCHD, env).read_bytes())["ProgramArguments"][0] == "/opt/other/python"


def test_systemd_and_autostart_are_never_both_installed(env):
    install(Kind.AUTOSTART, env=env, runner=_no_tools)
    with pytest.raises(UsageError, match="uninstall --kind autostart"):
        install(Kind.SYSTEMD, env=env, runner=_no_tools)
    assert not target_path(Kind.SYSTEMD, env).exists()


def test_default_kind_follows_the_platform_and_the_user_manager(env):
    assert default_kind(env, "linux") is Kind.AUTOSTART
    private = Path(env["XDG_RUNTIME_DIR"], "systemd", "private")
    private.parent.mkdir()
    private.touch()
    assert default_kind(env, "linux") is Kind.SYSTEMD
    assert default_kind(env, "darwin") is Kind.LAUNCHD
    assert default_kind(env, "win32") is Kind.WINDOWS


def test_install_without_kind_uses_the_default(env):
    done = cli(env, "install")  # no user manager in the private runtime dir: autostart
    assert done.returncode == 0, done.stderr
    assert target_path(Kind.AUTOSTART, env).exists()


def test_files_go_under_home_only(env, home):
    for kind in Kind:
        assert target_path(kind, env).is_relative_to(home)


# --- the service managers' commands, through a recording runner ----------------------------------------


class Recorder:
    """Stands in for systemctl/launchctl/schtasks: records each command and answers from a table."""

    def __init__(self, answers: dict[tuple[str, ...], CommandResult] | None = None):
        self.calls: list[tuple[str, ...]] = []
        self.answers = answers or {}

    def __call__(self, argv: Sequence[str]) -> CommandResult | None:
        self.calls.append(tuple(argv))
        return self.answers.get(tuple(argv), CommandResult(0, "", ""))


def _no_tools(argv: Sequence[str]) -> CommandResult | None:
    return None


def test_systemd_install_reloads_and_enables_and_uninstall_stops_and_disables(env):
    runner = Recorder({("systemctl", "--user", "is-enabled", "assistant.service"): CommandResult(1, "disabled\n", "")})
    outcome = install(Kind.SYSTEMD, env=env, runner=runner)
    assert runner.calls == [
        ("systemctl", "--user", "daemon-reload"),
        ("systemctl", "--user", "is-enabled", "assistant.service"),
        ("systemctl", "--user", "enable", "assistant.service"),
    ]
    assert any(line.startswith("enabled assistant.service") for line in outcome.lines)
    runner = Recorder({("systemctl", "--user", "is-active", "assistant.service"): CommandResult(0, "active\n", "")})
    uninstall(Kind.SYSTEMD, env=env, runner=runner)
    assert runner.calls == [
        ("systemctl", "--user", "is-active", "assistant.service"),
        ("systemctl", "--user", "stop", "assistant.service"),
        ("systemctl", "--user", "disable", "assistant.service"),
        ("systemctl", "--user", "daemon-reload"),
    ]


def test_without_systemctl_the_unit_is_written_with_a_note(env):
    outcome = install(Kind.SYSTEMD, env=env, runner=_no_tools)
    assert target_path(Kind.SYSTEMD, env).exists()
    assert any(line.startswith("note: systemctl not found") for line in outcome.lines)
    assert status(Kind.SYSTEMD, env=env, runner=_no_tools).running == "unknown"


def test_launchd_and_windows_commands(env):
    runner = Recorder({("launchctl", "print", f"gui/{os.getuid()}/com.assistant"): CommandResult(113, "", "")})
    install(Kind.LAUNCHD, env=env, runner=runner)
    path = str(target_path(Kind.LAUNCHD, env))
    assert ("launchctl", "bootstrap", f"gui/{os.getuid()}", path) in runner.calls
    runner = Recorder()
    uninstall(Kind.LAUNCHD, env=env, runner=runner)
    assert runner.calls == [("launchctl", "bootout", f"gui/{os.getuid()}/com.assistant")]

    runner = Recorder()
    install(Kind.WINDOWS, env=env, runner=runner)
    xml = str(target_path(Kind.WINDOWS, env))
    assert runner.calls == [("schtasks", "/Create", "/TN", "Assistant", "/XML", xml, "/F")]
    query = ("schtasks", "/Query", "/TN", "Assistant", "/FO", "LIST")
    running = Recorder({query: CommandResult(0, "TaskName: \\Assistant\nStatus:   Running\n", "")})
    shown = status(Kind.WINDOWS, env=env, runner=running)
    assert (shown.installed, shown.enabled, shown.running) == ("yes", "yes", "yes")
    runner = Recorder()
    uninstall(Kind.WINDOWS, env=env, runner=runner)
    assert runner.calls == [("schtasks", "/Delete", "/TN", "Assistant", "/F")]


# --- ownership marker ----------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["#", "xml"])
def test_marker_tells_ours_edited_and_foreign(style):
    body = '<?xml version="1.0"?>\n<a/>\n' if style == "xml" else "[Unit]\nDescription=x\n"
    text = add_header(body, style, made_dirs=2)
    owner, header, got = ownership(text, style)
    assert (owner, got, header.made_dirs) == (Ownership.OURS, body, 2)
    assert ownership(text.replace("x", "y").replace("<a/>", "<b/>"), style)[0] is Ownership.EDITED
    assert ownership(body, style)[0] is Ownership.FOREIGN
    if style == "xml":
        assert text.startswith('<?xml version="1.0"?>\n<!-- ') and "--" not in text.replace("<!--", "").replace(
            "-->", ""
        )


# --- process detection ---------------------------------------------------------------------------------


def test_recognises_an_assistant_run_command_line():
    assert is_assistant_run(["/usr/bin/python3", "-m", "assistant", "run"])
    assert is_assistant_run(["/home/me/.venv/bin/assistant", "run", "--no-tray"])
    assert not is_assistant_run(["/usr/bin/python3", "-m", "assistant", "service", "status"])
    assert not is_assistant_run(["vim", "run"])


# --- readiness over $NOTIFY_SOCKET ---------------------------------------------------------------------


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    folder = tempfile.mkdtemp(prefix="sdn", dir="/tmp")  # short: AF_UNIX paths are limited to 108 bytes
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(folder)


def test_notify_ready_reaches_the_socket(notify_socket):
    sock, path = notify_socket
    env = {"NOTIFY_SOCKET": path}
    assert notify_ready(env=env)
    assert sock.recv(4096) == b"READY=1"
    assert notify_ready("listening", env=env)
    assert sock.recv(4096) == b"READY=1\nSTATUS=listening"
    assert notify_stopping(env=env)
    assert sock.recv(4096) == b"STOPPING=1"
    assert notify_extend_timeout(90, env=env)
    assert sock.recv(4096) == b"EXTEND_TIMEOUT_USEC=90000000"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux only")
def test_notify_uses_the_abstract_namespace_for_an_at_sign():
    name = f"assistant-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert notify_ready(env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"READY=1"


def test_notify_from_a_child_process_like_systemd_sees_it(notify_socket):
    sock, path = notify_socket
    code = "from assistant.login import notify_ready; raise SystemExit(0 if notify_ready() else 1)"
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, NOTIFY_SOCKET=path), timeout=60)
    assert done.returncode == 0
    assert sock.recv(4096) == b"READY=1"


def test_notify_is_a_noop_without_systemd(tmp_path):
    assert not notify_ready(env={})
    assert not notify_stopping(env={"NOTIFY_SOCKET": ""})
    # A socket that went away is logged, never raised: the assistant keeps running.
    assert not notify_ready(env={"NOTIFY_SOCKET": str(tmp_path / "gone")})


def test_watchdog_interval():
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None
