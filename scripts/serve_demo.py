"""`make demo-serve`: the sample call through the service.

Makes an organization in `out/serve/`, starts `rawcore serve` on 127.0.0.1:PORT, uploads
`examples/sample-call.zip`, prints the Raw Tracks page's URL with the key, and keeps serving
until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--dir", default=str(ROOT / "out" / "serve"))
    ap.add_argument("--archive", default=str(ROOT / "examples" / "sample-call.zip"))
    args = ap.parse_args()
    base = Path(args.dir)
    db, storage = base / "rawcore.sqlite", base / "storage"
    rawcore = [sys.executable, "-m", "rawcore"]
    out = subprocess.run([*rawcore, "org", "create", "demo", "--db", str(db)], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    print(out.strip())
    key = out.split()[-1]
    url = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([*rawcore, "serve", "--db", str(db), "--storage", str(storage),
                               "--port", str(args.port)])  # fmt: skip
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        boundary = uuid.uuid4().hex
        archive = Path(args.archive)
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="room"\r\n\r\ndemo\r\n',
            f'--{boundary}\r\nContent-Disposition: form-data; name="participants"\r\n\r\n'
            + json.dumps({"user_1": "Ada Lovelace", "user_2": "Grace Hopper",
                          "user_3": "Alan Turing"}) + "\r\n",
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{archive.name}"\r\nContent-Type: application/zip\r\n\r\n',
        ]  # fmt: skip
        body = "".join(parts).encode() + archive.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        req = urllib.request.Request(url + "/v1/recordings", data=body, method="POST", headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
        accepted = json.load(urllib.request.urlopen(req))
        print(f"uploaded {archive.name}: {accepted}")
        print(f"\nThe Raw Tracks page: {url}/recordings/{accepted['recording_id']}?key={key}")
        print(f"The API: {url}/docs  (Authorization: Bearer {key})\nCtrl-C stops the server.")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
