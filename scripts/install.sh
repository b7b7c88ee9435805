#!/usr/bin/env bash
# Installs the assistant on Debian/Ubuntu: system packages (apt), a virtual
# environment in .venv beside this script's repository, and the package itself.
#
#   bash scripts/install.sh          # what the assistant needs to run
#   bash scripts/install.sh --test   # plus what the tests need (X server, tray host,
#                                    # PulseAudio virtual microphone, systemd tools)
#
# Runs as root or as a user with sudo (only apt-get needs root). Safe to re-run.
set -euo pipefail

with_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) with_tests=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
venv="${ASSISTANT_VENV:-$repo/.venv}"

# Runtime: PortAudio for sounddevice, espeak-ng for pyttsx3's voice, aplay, the
# ALSA->PulseAudio/PipeWire plugin so the desktop's chosen devices are reachable, and
# PyGObject with GTK 3 / AppIndicator for a tray icon with a menu.
runtime_packages=(libportaudio2 espeak-ng alsa-utils libasound2-plugins python3-venv ca-certificates
                  python3-gi gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1)
# Tests: a real X server and tray host, a PulseAudio virtual microphone, speech tools,
# and the validators for the login files.
test_packages=(xvfb x11-utils xdotool trayer dbus-daemon pulseaudio pulseaudio-utils sox systemd desktop-file-utils)

packages=("${runtime_packages[@]}")
if [[ $with_tests == 1 ]]; then packages+=("${test_packages[@]}"); fi

if command -v apt-get >/dev/null 2>&1; then
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if (( ${#missing[@]} )); then
    echo ">> installing system packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo ">> system packages already installed"
  fi
else
  echo ">> apt-get not found: install these with your package manager: ${packages[*]}" >&2
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install.sh: Python 3.11 or newer is needed ($python is $("$python" --version 2>&1)); set PYTHON=/path/to/python3" >&2
  exit 2
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo ">> creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip

extras=""
if [[ $with_tests == 1 ]]; then extras="[test]"; fi
echo ">> installing the assistant and its Python dependencies into $venv (a few GB the first time)"
"$venv/bin/python" -m pip install --progress-bar off -e "$repo$extras"

# pystray's menus need PyGObject. pip would have to build it against the system's GLib; the
# distribution's python3-gi is the same code, so link it into the venv when the Pythons match.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
venv_version="$("$venv/bin/python" -c 'import sys; print(sys.version_info[:2])')"
for system_python in /usr/bin/python3 "$python"; do
  [[ -x "$(command -v "$system_python")" ]] || continue
  [[ "$("$system_python" -c 'import sys; print(sys.version_info[:2])')" == "$venv_version" ]] || continue
  gi_dir="$("$system_python" -c 'import gi, os; print(os.path.dirname(gi.__file__))' 2>/dev/null || true)"
  if [[ -n "$gi_dir" && "$gi_dir" != "$site/gi" ]]; then
    ln -sfn "$gi_dir" "$site/gi"
    echo ">> tray menus: using the system's PyGObject ($gi_dir)"
    break
  fi
done
if ! "$venv/bin/python" -c 'import gi' 2>/dev/null; then
  echo ">> note: no PyGObject for this Python; the tray icon will have no menu (install python3-gi)"
fi

echo ">> done: $venv/bin/assistant --help"
