"""Lever: the screenshot pixel cap (`[screen] max_pixels`) — time to the first token against how far a
full-HD screen is scaled down, through OVQwen2VLModel on the full-size Qwen2-VL-2B (conversion.py's
`vl-default`).

What a lower cap costs is legibility: a screenshot is scaled to fit the cap, so small text shrinks with
it. Random weights cannot show what the model still reads; the scale and the resulting height of 14 px
text are printed instead.

    python benchmarks/pixel_cap.py --workdir /tmp/bench [--json FILE]     # prints Markdown
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

CAPS = (200704, 401408, 802816, 1605632)  # half, the default, twice, four times (multiples of 28x28)
SCREEN = (1920, 1080)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True, help="holds conversion.py's folders")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    from inference import Ours, screenshot
    from report import summary

    ours = Ours(args.workdir / "vl-default")
    ours.run(screenshot(*SCREEN, variant=-1))  # the first answer after load is slower
    runs: dict[int, dict] = {}
    for cap in CAPS:
        ours.run(screenshot(*SCREEN, variant=-2), max_pixels=cap)  # this cap's shapes seen once
        results = [ours.run(screenshot(*SCREEN, variant=k), max_pixels=cap) for k in range(args.repeats)]
        runs[cap] = {"ttft_s": [r[0] for r in results], "decode_ms": [r[1] for r in results], "tokens": results[0][2]}
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    print(f"A {SCREEN[0]}x{SCREEN[1]} screenshot through OVQwen2VLModel (full-size Qwen2-VL-2B, defaults), ")
    print(f"{args.repeats} runs per cap after one warm-up run at that cap.\n")
    print("| max_pixels | scale of the screen | 14 px text becomes | image tokens | first token, s | decode ms/token |")
    print("|---|---|---|---|---|---|")
    for cap, values in runs.items():
        scale = min(1.0, math.sqrt(cap / (SCREEN[0] * SCREEN[1])))
        default = " (default)" if cap == 401408 else ""
        print(
            f"| {cap}{default} | {scale:.2f} | {14 * scale:.1f} px | {values['tokens']} | "
            f"{summary(values['ttft_s'], 2)} | {summary(values['decode_ms'])} |"
        )
    default = statistics.median(runs[401408]["ttft_s"])
    print(
        "\nFirst token against the default cap: "
        + ", ".join(f"{cap}: {statistics.median(v['ttft_s']) / default:.2f}x" for cap, v in runs.items())
        + "."
    )


if __name__ == "__main__":
    main()
