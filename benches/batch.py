"""`rawcore batch` against a shell loop over `rawcore process-all`, on the same 40 recordings.

The recordings are 40 copies of `examples/sample-call.zip` (a 17 s three-person call made by
GStreamer's encoders and payloaders: 4 audio, 3 camera and 1 screen-share track), each under
its own name, so every mode does the same work 40 times. Four ways to process them all, in one
hyperfine run so they share the machine's load (each run starts from an empty output folder):

- `loop`: a shell loop, one `rawcore process-all` process per recording, one at a time;
- `pool`: `rawcore batch` on its local pool (one process per core);
- `ray`: `rawcore batch --ray auto` on a local Ray cluster already running (`ray start --head
  --num-cpus N`, started and stopped by this script);
- `ray-local`: `rawcore batch --ray local`, which starts (and stops) a Ray instance itself.

Afterwards every mode's 40 manifests are compared with the loop's (they must be equal).

    .venv/bin/python benches/batch.py --runs 3          # needs hyperfine and rawcore[ray]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample-call.zip"
BIN = Path(sys.executable).parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=40)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rawcore-bench-batch-"))
    inputs = work / "in"
    inputs.mkdir(parents=True, exist_ok=True)
    for i in range(args.recordings):
        shutil.copyfile(SAMPLE, inputs / f"call-{i:03d}.zip")
    rawcore = shlex.quote(str(BIN / "rawcore"))
    ray = str(BIN / "ray")
    quiet = ">/dev/null 2>&1"
    out = {m: work / m for m in ("loop", "pool", "ray", "ray-local")}
    commands = {
        "loop": (
            f"for f in {inputs}/*.zip; do n=$(basename $f .zip); "
            f"{rawcore} process-all --input-file $f --output {out['loop']}/$n -q {quiet}; done"
        ),
        "pool": f"{rawcore} batch --input-dir {inputs} --output {out['pool']} -q process-all",
    }
    if not args.skip_ray:
        commands["ray"] = (
            f"{rawcore} batch --ray auto --input-dir {inputs} --output {out['ray']} -q process-all"
        )
        commands["ray-local"] = (
            f"{rawcore} batch --ray local --input-dir {inputs} --output {out['ray-local']} -q "
            "process-all"
        )
        subprocess.run([ray, "start", "--head", f"--num-cpus={args.cpus}",
                        "--include-dashboard=false", "--disable-usage-stats"],
                       check=True, capture_output=True)  # fmt: skip
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    hf = ["hyperfine", "--runs", str(args.runs), "--warmup", "0", "--shell", "bash",
          "--export-json", str(work / "hyperfine.json")]  # fmt: skip
    for name, cmd in commands.items():
        hf += ["--command-name", name, "--prepare", f"rm -rf {out[name]}", cmd]
    try:
        subprocess.run(hf, check=True, env=env)
    finally:
        if not args.skip_ray:
            subprocess.run([ray, "stop"], capture_output=True)
    results = json.loads((work / "hyperfine.json").read_text())["results"]
    loop = next(r for r in results if r["command"] == "loop")
    names = sorted(p.name for p in out["loop"].iterdir())
    assert len(names) == args.recordings
    rows = []
    for r in results:
        mode = r["command"]
        got = sorted(p.name for p in out[mode].iterdir())
        assert got == names, (mode, len(got))
        for n in names:
            ours = json.loads((out[mode] / n / "manifest.json").read_text())
            theirs = json.loads((out["loop"] / n / "manifest.json").read_text())
            assert ours == theirs, (mode, n)
        rows.append({
            "mode": mode, "median_s": r["median"], "min_s": r["min"], "max_s": r["max"],
            "recordings_per_s": args.recordings / r["median"],
            "speedup_vs_loop": loop["median"] / r["median"],
        })  # fmt: skip
    print(f"\n{args.recordings} recordings, {args.cpus} CPUs, {args.runs} runs each, "
          f"load average before: {load_before:.1f}, after: {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| mode | median s | min s | recordings/s | vs loop |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['mode']} | {row['median_s']:.2f} | {row['min_s']:.2f} | "
              f"{row['recordings_per_s']:.2f} | {row['speedup_vs_loop']:.2f}x |")  # fmt: skip
    doc = {"recordings": args.recordings, "cpus": args.cpus, "runs": args.runs,
           "load_before": load_before, "results": rows}  # fmt: skip
    if args.out is not None:
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
