"""The `assistant` command line: parses arguments, runs a subcommand, maps errors to exit codes.

Exit codes: 0 success, 2 bad usage or bad input, 1 an internal failure. Every error is one
line on stderr that says what to do. Only this module prints; the library logs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from . import __version__
from .errors import AssistantError, UsageError

log = logging.getLogger("assistant")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="FILE", help="configuration file (default: $XDG_CONFIG_HOME/assistant/config.toml)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="assistant",
        description="A local, private voice assistant: Qwen2-Audio hears you, Qwen2-VL reads your screen, "
        "all on this machine through OpenVINO.",
    )
    parser.add_argument("--version", action="version", version=f"assistant {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser(
        "run",
        help="listen and answer out loud (the assistant itself)",
        description="Listen to the microphone (or a wav file), answer spoken requests out loud.",
    )
    _add_config(run)
    run.add_argument("--input", default="mic", metavar="mic|FILE.wav", help="audio source (default: mic)")
    run.add_argument("--realtime", action="store_true", help="read --input FILE at real-time pace")
    run.add_argument("--no-tray", action="store_true", help="do not show a tray icon")
    run.add_argument("--events", metavar="FILE|-", help="write one JSON event per line to FILE or stdout")
    run.add_argument("--exit-at-end", action="store_true", help="stop after the last request of --input FILE")

    ask = sub.add_parser(
        "ask",
        help="ask one question about audio, images, video or the screen",
        description="One request from the terminal; the answer streams to stdout.",
    )
    ask.add_argument("--audio", metavar="WAV", help="spoken request or audio to analyse")
    ask.add_argument("--image", metavar="IMG", action="append", default=[], help="image (repeatable)")
    ask.add_argument("--video", metavar="PATH", action="append", default=[], help="video file or frame folder")
    ask.add_argument("--screen", action="store_true", help="take a screenshot and ask about it")
    ask.add_argument("--text", metavar='"..."', help="text question")
    ask.add_argument("--greedy", action="store_true", help="greedy decoding (same answer every time)")
    ask.add_argument("--max-new-tokens", type=int, metavar="N", help="longest answer in tokens")
    ask.add_argument("--json", action="store_true", help="print one JSON object with text, route and timings")
    ask.add_argument("--no-speak", action="store_true", help="do not speak the answer")
    _add_config(ask)

    convert = sub.add_parser(
        "convert",
        help="download and convert the models to OpenVINO INT4",
        description="Convert Qwen2-Audio and/or Qwen2-VL into OpenVINO IR with NNCF weight compression.",
    )
    convert.add_argument("target", choices=["audio", "vl", "all"], help="which model")
    convert.add_argument("--source", metavar="HF_ID_OR_DIR", help="hub id or local checkpoint folder")
    convert.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default: the configured model folder; with 'all', the folder both go into)",
    )
    convert.add_argument(
        "--weights",
        choices=["int4", "int8", "fp16", "f32"],
        default="int4",
        help="language-model weights (default: int4)",
    )
    convert.add_argument(
        "--encoder-weights",
        choices=["int8", "fp16"],
        default="int8",
        help="audio/vision encoders and the embedding table (default: int8, half the memory of fp16)",
    )
    convert.add_argument("--group-size", type=int, default=128, metavar="N", help="INT4 group size (default: 128)")
    convert.add_argument("--ratio", type=float, default=1.0, metavar="R", help="share of INT4 layers (default: 1.0)")
    convert.add_argument("--sym", action="store_true", help="symmetric INT4 instead of asymmetric")
    convert.add_argument(
        "--int4-head",
        action="store_true",
        help="output head in INT4 too (default: INT8): faster new tokens, accuracy cost not measured on real weights",
    )
    convert.add_argument("--force", action="store_true", help="rebuild even if an identical conversion exists")
    _add_config(convert)

    devices = sub.add_parser(
        "devices",
        help="list audio and OpenVINO devices",
        description="List audio input/output devices and OpenVINO devices.",
    )
    _add_config(devices)

    doctor = sub.add_parser(
        "doctor",
        help="check that everything the assistant needs is here",
        description="Check Python packages, OpenVINO, audio, display, tray, voices, models "
        "and memory. Exit 0 when all that is needed is present, 1 otherwise.",
    )
    _add_config(doctor)

    selftest = sub.add_parser(
        "selftest",
        help="run a spoken question through every stage on tiny models",
        description="Build tiny random models, speak a question, and run it through "
        "VAD, transcript, routing, model and voice.",
    )
    _add_config(selftest)

    service = sub.add_parser(
        "service", help="start the assistant at login", description="Install, remove or inspect the login service."
    )
    service.add_argument("action", choices=["install", "uninstall", "status"])
    service.add_argument(
        "--kind",
        choices=["systemd", "autostart", "launchd", "windows"],
        help="kind of login integration (default: the platform's usual one)",
    )
    return parser


def _cmd_devices(args: argparse.Namespace) -> int:
    from .audio.devices import AudioUnavailable, list_audio_devices
    from .models.ov_devices import list_openvino_devices

    print("Audio devices:")
    try:
        audio = list_audio_devices()
    except AudioUnavailable as exc:
        audio = []
        print(f"  (none: {exc})")
    else:
        if not audio:
            print("  (none: no sound card or sound server found)")
    for d in audio:
        roles = []
        if d.max_input_channels:
            roles.append(f"in {d.max_input_channels}ch" + (" default" if d.is_default_input else ""))
        if d.max_output_channels:
            roles.append(f"out {d.max_output_channels}ch" + (" default" if d.is_default_output else ""))
        print(f"  [{d.index}] {d.name} ({d.host_api}; {', '.join(roles)}; {d.default_samplerate:.0f} Hz)")
    print("OpenVINO devices:")
    try:
        ov_devices = list_openvino_devices()
    except Exception as exc:  # OpenVINO's errors are plain RuntimeErrors
        raise AssistantError(f"OpenVINO cannot list devices ({exc}); reinstall with bash scripts/install.sh") from None
    for od in ov_devices:
        print(f"  {od.name}: {od.full_name}")
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
    import json

    from .ask import AskRequest, run_ask
    from .config import load_settings

    settings = load_settings(args.config)
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise UsageError("--max-new-tokens must be at least 1")
    request = AskRequest(
        audio=Path(args.audio) if args.audio else None,
        images=tuple(Path(p) for p in args.image),
        videos=tuple(Path(p) for p in args.video),
        screen=args.screen,
        text=args.text,
        greedy=args.greedy,
        max_new_tokens=args.max_new_tokens,
    )

    def stream(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    result = run_ask(request, settings, on_text=None if args.json else stream)
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        print()
        if result.transcript is not None:
            print(f"(heard: {result.transcript})", file=sys.stderr)
    if not args.no_speak and settings.tts.enabled and result.text:
        _speak(result.text, settings)
    return 0


def _speak(text: str, settings) -> None:
    from .speech.synthesis import Player, synthesize
    from .speech.voices import SpeechUnavailable

    try:
        Player(settings.audio.output_device).play(synthesize(text, settings.tts.voice, settings.tts.rate))
    except SpeechUnavailable as exc:
        # The answer is already printed; not being able to say it out loud is worth a warning only.
        print(f"assistant: warning: not spoken: {exc} (use --no-speak to skip speaking)", file=sys.stderr)


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from .config import explicit_config_file, load_settings
    from .models.manifest import check_model_folders

    settings = load_settings(args.config)
    logging.getLogger("assistant").setLevel(getattr(logging, settings.logging.level))
    file_mode = args.input != "mic"
    if args.exit_at_end and not file_mode:
        raise UsageError("--exit-at-end needs --input FILE.wav")
    # Before the microphone, the input file and any slow import or model load: without converted models
    # (a fresh install) the user learns at once, in one line, which command converts them.
    vl_problem = check_model_folders(settings.models.audio_dir, settings.models.vl_dir, explicit_config_file(settings))
    if not settings.screen.enabled:
        log.info("screen questions are off ([screen] enabled = false): the Qwen2-VL model is not loaded")
    elif vl_problem is not None:
        log.warning("screen questions are off: %s", vl_problem)
    with_vl = settings.screen.enabled and vl_problem is None
    # Also before anything is loaded: models that cannot fit are refused now, not killed mid-answer.
    from .memory_check import check_memory_before_start

    check_memory_before_start(settings, with_vl)

    from .audio.sources import FileSource, MicrophoneSource
    from .daemon.events import EventLog
    from .daemon.service import AssistantService
    from .login.notify import notify_ready, notify_stopping
    from .models.qwen2audio import OVQwen2AudioModel
    from .models.qwen2vl import OVQwen2VLModel
    from .models.runtime import RuntimeOptions

    source = FileSource(Path(args.input), realtime=args.realtime) if file_mode else None
    microphone = None
    if not file_mode:
        microphone = MicrophoneSource(settings.audio.input_device)
        microphone.check()  # before loading the models: no microphone is a one-line error at once
    runtime = RuntimeOptions.from_settings(settings.runtime)
    audio_model = OVQwen2AudioModel(settings.models.audio_dir, device=settings.runtime.device, runtime=runtime)
    vl_model = None
    if with_vl:
        vl_model = OVQwen2VLModel(settings.models.vl_dir, device=settings.runtime.device, runtime=runtime)
    stream = None
    if args.events == "-":
        stream = sys.stdout
    elif args.events:
        stream = open(args.events, "a", encoding="utf-8")  # noqa: SIM115 - closed below
    speaker = _speaker(settings)
    service = AssistantService(settings, EventLog(stream), audio_model, vl_model, speaker=speaker)
    tray = None
    try:

        async def main() -> None:
            nonlocal tray
            loop = asyncio.get_running_loop()
            frames_from = source
            if microphone is not None:
                microphone.on_lost, microphone.on_back = service.microphone_lost, service.microphone_back
                microphone.open(loop)
                frames_from = microphone
            if not args.no_tray and settings.tray.enabled:
                tray = _tray(service, settings, loop)
            notify_ready("listening")
            await service.run(frames_from.frames(), file_mode, args.exit_at_end)

        asyncio.run(main())
    finally:
        notify_stopping()
        if tray is not None:
            tray.stop()
        if speaker is not None:
            speaker.shutdown()
        if stream is not None and stream is not sys.stdout:
            stream.close()
    if service.model_threads_running():
        # A long prefill cannot be interrupted between tokens; stopping must not wait for it.
        log.info("a model call was still running; exiting without waiting for it")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _speaker(settings):
    """The service's voice, or None when speaking is turned off."""
    if not settings.tts.enabled:
        return None
    from .speech.speaker import Speaker
    from .speech.synthesis import Player, synthesize

    return Speaker(
        lambda text: synthesize(text, settings.tts.voice, settings.tts.rate),
        Player(settings.audio.output_device),
        tail_s=settings.audio.speaking_tail_ms / 1000,
    )


def _tray(service, settings, loop):
    """The tray icon wired to the service (None when headless: the reason is logged)."""
    from .open_config import open_config
    from .tray.icon import TrayActions, TrayIcon

    actions = TrayActions(
        talk=service.talk,
        toggle_mute=service.toggle_mute,
        ask_screen=service.ask_screen,
        stop_speaking=service.stop_speaking,
        open_config=lambda: open_config(settings),
        quit=service.stop,
    )
    tray = TrayIcon.start(actions, loop.call_soon_threadsafe)
    if tray is not None:
        service.on_state = lambda activity: tray.show(activity.state, activity.muted)
        tray.show(service.activity.state, service.activity.muted)
    return tray


def _cmd_selftest(args: argparse.Namespace) -> int:
    from .selftest import StageResult, run_selftest

    print("Self-test on tiny random models (no download; answers are gibberish, every stage must work):")

    def report(result: StageResult) -> None:
        mark = "ok  " if result.ok else "FAIL"
        print(f"  {mark} {result.name:15} {result.seconds * 1000:8.0f} ms  {result.detail}", flush=True)

    ok = run_selftest(report)
    print("All stages worked." if ok else "A stage failed: see above; `assistant doctor` may tell why.")
    return 0 if ok else 1


def _cmd_convert(args: argparse.Namespace) -> int:
    from .config import load_settings

    settings = load_settings(args.config)
    targets = ["audio", "vl"] if args.target == "all" else [args.target]
    if args.target == "all" and args.source:
        raise UsageError("--source names one checkpoint; use it with 'convert audio' or 'convert vl'")
    from .models.convert import convert_model
    from .models.convert.compression import compression_from_options

    compression = compression_from_options(args.weights, args.group_size, args.ratio, args.sym, args.int4_head)
    for target in targets:
        kind = "qwen2-audio" if target == "audio" else "qwen2-vl"
        source = args.source or (settings.models.audio_source if target == "audio" else settings.models.vl_source)
        out = settings.models.audio_dir if target == "audio" else settings.models.vl_dir
        if args.out:  # with "all", --out is the folder both models go into
            out = Path(args.out) / out.name if args.target == "all" else Path(args.out)
        result = convert_model(
            kind,
            source,
            out,
            compression,
            encoder_weights=args.encoder_weights,
            full_precision=args.weights == "f32",
            force=args.force,
            progress=lambda message, target=target: print(f"[convert {target}] {message}", file=sys.stderr, flush=True),
        )
        verb = "Already converted" if result.skipped else f"Converted in {result.seconds:.1f} s"
        print(f"{verb}: {kind} from {result.manifest.source} -> {result.folder}")
        lm = result.manifest.compression.get("language_model", {})
        print(
            f"  language model weights: {lm.get('mode')}"
            + (f", group {lm['group_size']}, ratio {lm['ratio']}" if "group_size" in lm else "")
            + f"; encoders: {result.manifest.compression.get('encoders')}"
        )
        for sub in result.manifest.submodels:
            print(f"  {sub.name:24} {sub.bytes / 2**20:10.1f} MiB  {sub.xml}")
        print(f"  total {result.manifest.weight_bytes / 2**30:.2f} GiB")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .doctor import Status, run_checks

    settings = load_settings(args.config)
    findings = run_checks(settings)
    width = max(len(f.topic) for f in findings)
    for f in findings:
        print(f"{f.status.value:8} {f.topic:{width}}  {f.detail}")
        if f.fix and f.status is not Status.OK:
            print(f"{'':8} {'':{width}}  -> {f.fix}")
    problems = sum(f.status is Status.PROBLEM for f in findings)
    warnings = sum(f.status is Status.WARNING for f in findings)
    print(f"\n{problems} problem(s), {warnings} warning(s).", "Ready." if not problems else "Not ready.")
    return 1 if problems else 0


def _cmd_service(args: argparse.Namespace) -> int:
    from .login import Kind, default_kind, install, installed_kinds, status, uninstall

    kind = Kind(args.kind) if args.kind else None
    if args.action == "install":
        outcome = install(kind or default_kind(os.environ))
        for line in outcome.lines:
            print(line)
    elif args.action == "uninstall":
        # Without --kind: everything install wrote, whatever the kind.
        kinds = [kind] if kind else installed_kinds()
        if not kinds:
            print("nothing to uninstall: no login file written by 'assistant service install' was found")
        for k in kinds:
            for line in uninstall(k, strict=True).lines:
                print(line)
    else:
        rows = [status(k) for k in ([kind] if kind else list(Kind))]
        print(f"{'kind':10} {'installed':13} {'enabled':8} {'running':8} file")
        for row in rows:
            print(f"{row.kind.value:10} {row.installed:13} {row.enabled:8} {row.running:8} {row.path}")
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _cmd_run,
    "ask": _cmd_ask,
    "convert": _cmd_convert,
    "devices": _cmd_devices,
    "doctor": _cmd_doctor,
    "selftest": _cmd_selftest,
    "service": _cmd_service,
}


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    verbose = False
    try:
        args = parser.parse_args(argv)
        verbose = args.verbose
        _setup_logging(verbose)
        if args.command is None:
            parser.print_help()
            return 2
        return HANDLERS[args.command](args)
    except AssistantError as exc:
        print(f"assistant: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("assistant: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if verbose:
            log.exception("internal error")
        detail = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"assistant: internal error: {type(exc).__name__}: {detail} (run with --verbose for details)",
            file=sys.stderr,
        )
        return 1
