#!/usr/bin/env python3
"""Google Benchmark results of several builds (or of one build at several
CPU levels) measured in one run, alternating, so that they share the
machine's state; a Markdown table of each configuration against the first.

    bench/compare_builds.py --out DIR \
        --config before=/path/old/medsearch_bench \
        --config after=build/bin/medsearch_bench \
        --config after-v3=build/bin/medsearch_bench:MEDSEARCH_CPU_LEVEL=v3 \
        --group encoder='BM_Encode/tokens:128/threads:1/' [--group ...] [--rounds 2]

A configuration is LABEL=BINARY[:VAR=VALUE[,VAR=VALUE...]]. Each group's
filter runs once per configuration per round, the configurations in turn;
a benchmark's figure is its fastest real time over the rounds (noise on a
shared machine only slows runs down), with the median beside it. Writes DIR/compare.json and
DIR/compare.md; a benchmark that only some configurations run (a skipped
AMX one) is shown for those.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def parse_config(text):
    label, _, rest = text.partition("=")
    binary, _, env = rest.partition(":")
    extra = dict(kv.split("=", 1) for kv in env.split(",") if kv)
    return label, Path(binary), extra


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append", required=True, type=parse_config)
    ap.add_argument("--group", action="append", required=True, type=lambda t: t.split("=", 1))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--min-time", default=None, help="--benchmark_min_time for every benchmark")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    best = {}  # (group, benchmark) -> {label: ns}
    context = {}
    for r in range(args.rounds):
        for group, filt in args.group:
            for label, binary, extra in args.config:
                raw = args.out / f"raw-{group}-{label}-{r}.json"
                cmd = [str(binary), f"--benchmark_filter={filt}", "--benchmark_format=json",
                       f"--benchmark_out={raw}", "--benchmark_out_format=json"]
                if args.min_time:
                    cmd.append(f"--benchmark_min_time={args.min_time}")
                print(f"round {r + 1}/{args.rounds} {group} {label}", file=sys.stderr, flush=True)
                subprocess.run(cmd, env={**os.environ, **extra}, stdout=subprocess.DEVNULL, check=True)
                data = json.loads(raw.read_text())
                context.setdefault(label, data.get("context", {}))
                for b in data["benchmarks"]:
                    if b.get("error_occurred") or b.get("run_type") == "aggregate":
                        continue
                    ns = b["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
                    best.setdefault((group, b["name"]), {}).setdefault(label, []).append(ns)
    labels = [c[0] for c in args.config]
    rows = [{"group": g, "benchmark": n, "all_ns": v, "ns": {l: min(t) for l, t in v.items()},
             "median_ns": {l: sorted(t)[len(t) // 2] for l, t in v.items()}} for (g, n), v in best.items()]
    (args.out / "compare.json").write_text(json.dumps(
        {"configs": [{"label": l, "binary": str(b), "env": e} for l, b, e in args.config],
         "groups": dict(args.group), "rounds": args.rounds, "rows": rows,
         "context": context.get(labels[0], {})}, indent=1))
    lines = [f"Fastest real time of {args.rounds} alternating rounds; ratio = configuration / {labels[0]} "
             "(below 1: faster), fastest and (in brackets) median.", "",
             "| group | benchmark | " + " | ".join(labels) + " | " + " | ".join(f"{l}/{labels[0]}" for l in labels[1:]) + " |",
             "|---|---|" + "---:|" * (2 * len(labels) - 1)]
    fmt = lambda ns: f"{ns / 1e6:.3f} ms" if ns >= 1e6 else f"{ns / 1e3:.2f} us" if ns >= 1e3 else f"{ns:.1f} ns"
    for row in rows:
        v = row["ns"]
        cells = [fmt(v[l]) if l in v else "-" for l in labels]
        med = row["median_ns"]
        ratios = [f"{v[l] / v[labels[0]]:.2f} ({med[l] / med[labels[0]]:.2f})" if l in v and labels[0] in v else "-"
                  for l in labels[1:]]
        lines.append(f"| {row['group']} | {row['benchmark']} | " + " | ".join(cells + ratios) + " |")
    (args.out / "compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
