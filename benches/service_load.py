"""Load on the service (`make bench`; not a timed test): 50 concurrent clients listing
recordings and polling a job on loopback for 30 s while 8 conversions are queued at once.

Starts `rawcore serve` (uvicorn, 2 worker threads, or a worker child with
`--worker-process`; a fresh SQLite file and folder) on a free port, ingests the sample call,
then measures every list request's latency, counts errors, samples the server's RSS once a
second, and at the end checks every conversion job in the SQLite file: done, claimed exactly
once (attempts = 1), its MP4 stored once. Prints a JSON summary (and writes it to
`out/bench/service_load_think{MS}[_process].json`). Each client lists, polls, then pauses
`--think-ms` (250 by default, twice as often as the page polls); `--think-ms 0` sends back to
back, which measures saturation: 50 closed-loop clients then wait in line for each other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from service_helpers import ROOT, create_org, start_service, upload, wait_job

SLOW: list[tuple[float, float]] = []
START = [time.perf_counter()]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def client_loop(c: httpx.AsyncClient, job_id: str, until: float, lat: list[float],
                      errors: list[str], think_s: float) -> None:  # fmt: skip
    while time.monotonic() < until:
        t0 = time.perf_counter()
        r = await c.get("/v1/recordings")
        lat.append(time.perf_counter() - t0)
        if lat[-1] > 0.5:
            SLOW.append((round(t0 - START[0], 2), round(lat[-1], 3)))
        if r.status_code != 200:
            errors.append(f"list {r.status_code}")
        r = await c.get(f"/v1/jobs/{job_id}")
        if r.status_code != 200:
            errors.append(f"job {r.status_code}")
        if think_s:
            await asyncio.sleep(think_s)


async def run(args: argparse.Namespace) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="rawcore-bench-"))
    svc = start_service(tmp, "--workers", "2", *(["--worker-process"] if args.worker_process
                                                   else []))  # fmt: skip
    try:
        key = create_org(svc.db, "bench")
        with svc.client(key) as c:
            rec = upload(c).json()
            assert wait_job(c, rec["job_id"])["state"] == "done"
            tracks = c.get(f"/v1/recordings/{rec['recording_id']}/tracks").json()["tracks"]
            picks = [t for t in tracks if not t["stitched"]][: args.conversions]
            if len(picks) < args.conversions:  # the stitched ones are other files
                picks += [t for t in tracks if t["stitched"]][: args.conversions - len(picks)]
            rss = [rss_mb(svc.proc.pid)]
            jobs = [c.post(f"/v1/tracks/{t['track_id']}/conversions",
                           json={"mode": "editor"}).json()["job_id"] for t in picks]  # fmt: skip
        lat: list[float] = []
        errors: list[str] = []
        # Every client connects (and makes its TLS-less httpx client, ~20 ms of CPU each) before
        # the clock starts, so the figures are the server's, not the clients' start-up.
        headers = {"Authorization": f"Bearer {key}"}
        clients = [httpx.AsyncClient(base_url=svc.url, headers=headers, timeout=30)
                   for _ in range(args.clients)]  # fmt: skip
        await asyncio.gather(*(c.get("/healthz") for c in clients))
        until = time.monotonic() + args.seconds
        START[0] = time.perf_counter()

        async def sample() -> None:
            while time.monotonic() < until:
                rss.append(rss_mb(svc.proc.pid))
                await asyncio.sleep(1.0)

        await asyncio.gather(sample(), *(
            client_loop(c, jobs[i % len(jobs)], until, lat, errors, args.think_ms / 1000)
            for i, c in enumerate(clients)))  # fmt: skip

        for c in clients:
            await c.aclose()
        with svc.client(key) as c:
            finals = [wait_job(c, j, timeout=600) for j in jobs]
        rss.append(rss_mb(svc.proc.pid))
        with sqlite3.connect(svc.db) as db:
            attempts = dict(db.execute("SELECT id, attempts FROM jobs WHERE kind='convert'"))
        mp4s = list(svc.storage.rglob("conversions/*.mp4"))
        lat.sort()
        q = statistics.quantiles(lat, n=100)
        return {
            "clients": args.clients, "worker_process": args.worker_process,
            "think_ms": args.think_ms, "seconds": args.seconds,
            "list_requests": len(lat),
            "requests_per_s": round(2 * len(lat) / args.seconds, 1),
            "errors": len(errors), "error_kinds": sorted(set(errors)),
            "list_ms": {"p50": round(q[49] * 1000, 1), "p95": round(q[94] * 1000, 1),
                        "p99": round(q[98] * 1000, 1), "max": round(lat[-1] * 1000, 1)},
            "slow_list_requests": sorted(SLOW, key=lambda x: -x[1])[:8],
            "conversions": len(jobs),
            "conversions_done": sum(f["state"] == "done" for f in finals),
            "conversion_attempts": sorted(attempts.get(j, 0) for j in jobs),
            "mp4s_stored": len(mp4s),
            "rss_mb": {"start": round(rss[0], 1), "peak": round(max(rss), 1),
                       "end": round(rss[-1], 1),
                       "last_10s_spread": round(max(rss[-10:]) - min(rss[-10:]), 1)},
        }  # fmt: skip
    finally:
        svc.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--conversions", type=int, default=8)
    ap.add_argument("--worker-process", action="store_true",
                    help="rawcore serve --worker-process (workers in a child process)")
    ap.add_argument("--think-ms", type=float, default=250.0,
                    help="pause per client between rounds (the page polls every 500 ms); "
                    "0: back to back")  # fmt: skip
    args = ap.parse_args()
    result = asyncio.run(run(args))
    out = ROOT / "out" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    proc = "_process" if args.worker_process else ""
    path = out / f"service_load_think{int(args.think_ms)}{proc}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    ok = (result["errors"] == 0 and result["conversions_done"] == result["conversions"]
          and set(result["conversion_attempts"]) == {1})  # type: ignore[arg-type]  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
