"""Process-to-process timing, interleaved: every round runs each command once, in a fresh
random order, so a shared host's load drifting during the run falls on all of them alike
(hyperfine runs one command's runs back to back). Wall time around the process, its user+sys
CPU from `wait4`. Commands are given as NAME=COMMAND LINE; `--fresh DIR` deletes DIR before
every run whose command line names it (an output folder written fresh, not overwritten).

    .venv/bin/python benches/cli_pairs.py --rounds 15 --fresh /tmp/o1 --fresh /tmp/o2 \\
        "before=env PYTHONPATH=/tmp/old/python rawcore extract-video --input-dir V -o /tmp/o1 -q" \\
        "after=rawcore extract-video --input-dir V -o /tmp/o2 -q" \\
        "janus=bash janus-v.sh"
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import shutil
import statistics
import subprocess
import time


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall and user+sys CPU (ms) of one run of `argv`."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} exited with {proc.returncode}")
    return wall * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("commands", nargs="+", help="NAME=COMMAND LINE")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--fresh", action="append", default=[], help="an output folder to delete")
    args = ap.parse_args()
    commands = {}
    for spec in args.commands:
        name, _, line = spec.partition("=")
        commands[name] = shlex.split(line)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for n in range(args.warmup + args.rounds):
        order = list(commands)
        random.shuffle(order)
        for name in order:
            argv = commands[name]
            for folder in args.fresh:
                if folder in argv:
                    shutil.rmtree(folder, ignore_errors=True)
            result = run_once(argv)
            if n >= args.warmup:
                times[name].append(result)
    print(f"{'command':<28} {'mean':>8} {'median':>8} {'min':>8} {'user+sys':>9}  (ms)")
    for name, runs in times.items():
        walls = [w for w, _ in runs]
        cpu = statistics.median(c for _, c in runs)
        print(
            f"{name:<28} {statistics.mean(walls):8.1f} {statistics.median(walls):8.1f} "
            f"{min(walls):8.1f} {cpu:9.1f}"
        )


if __name__ == "__main__":
    main()
