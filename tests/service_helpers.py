"""The service as a real process: `rawcore serve` under uvicorn on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample-call.zip"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rawcore_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rawcore", *args]


def create_org(db: Path, name: str) -> str:
    out = subprocess.run(rawcore_cmd("org", "create", name, "--db", str(db)), check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return out.split()[-1]


@dataclass
class Service:
    url: str
    db: Path
    storage: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_service(tmp: Path, *extra: str) -> Service:
    db, storage, log = tmp / "rawcore.sqlite", tmp / "storage", tmp / "serve.log"
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        rawcore_cmd("serve", "--db", str(db), "--storage", str(storage), "--port", str(port),
                    *extra),
        stdout=open(log, "wb"),  # noqa: SIM115 (open while the server runs)
        stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    svc = Service(f"http://127.0.0.1:{port}", db, storage, proc, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rawcore serve exited: {log.read_text()}")
        try:
            if httpx.get(svc.url + "/healthz", timeout=1).status_code == 200:
                return svc
        except httpx.HTTPError:
            time.sleep(0.1)
    svc.stop()
    raise RuntimeError(f"rawcore serve did not start: {log.read_text()}")


def upload(client: httpx.Client, path: Path = SAMPLE, room: str = "room-1",
           participants: str = '{"user_1": "Ada Lovelace", "user_2": "Grace Hopper"}'
           ) -> httpx.Response:  # fmt: skip
    with open(path, "rb") as f:
        return client.post("/v1/recordings", files={"file": (path.name, f, "application/zip")},
                           data={"room": room, "participants": participants})  # fmt: skip


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)
