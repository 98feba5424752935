"""The wheel in `dist/` installs and runs on a machine without a Rust toolchain.

`make wheel` builds it (manylinux_2_17, linked with zig). This test makes a fresh venv with
`python -m venv`, installs the wheel there with the venv's own pip taking binary wheels only
(`--only-binary :all:`, so nothing can be compiled) and with every folder that holds cargo,
rustc or rustup taken off PATH, then runs `rawcore --version` and `rawcore list-tracks` on the
sample call from that venv. Dependencies come from the pip cache or the index.

`make test` and `make test-wheel` build the wheel first; run on its own, the test is skipped
when `dist/` holds no wheel for this Python.
`RAWCORE_WHEEL_PYTHON` picks another interpreter for the venv (e.g. Debian's /usr/bin/python3).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "dist"
SAMPLE_ZIP = REPO / "examples" / "sample-call.zip"
RUST_TOOLS = ("cargo", "rustc", "rustup")

pytestmark = pytest.mark.wheel


def newest_wheel() -> Path | None:
    """The newest rawcore wheel in dist/ for this interpreter and machine."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    wheels = [
        w
        for w in DIST.glob(f"rawcore-*-{tag}-*.whl")
        if "linux" in w.name and w.name.endswith(f"_{platform.machine()}.whl")
    ]
    return max(wheels, key=lambda w: w.stat().st_mtime, default=None)


def without_rust(environ: dict[str, str]) -> dict[str, str]:
    """`environ` with no Rust toolchain on PATH and no toolchain or venv variables."""
    dirs = [
        d
        for d in environ.get("PATH", "").split(os.pathsep)
        if d and not any((Path(d) / tool).exists() for tool in RUST_TOOLS)
    ]
    dropped = ("CARGO", "RUSTUP", "RUSTC", "RUSTFLAGS", "MATURIN", "VIRTUAL_ENV", "PYTHON")
    env = {k: v for k, v in environ.items() if not k.startswith(dropped)}
    env["PATH"] = os.pathsep.join(dirs)
    return env


WHEEL = newest_wheel()


@pytest.mark.skipif(WHEEL is None, reason="no wheel in dist/: `make wheel` builds one")
def test_wheel_installs_and_runs_without_rust(tmp_path: Path) -> None:
    assert WHEEL is not None
    env = without_rust(dict(os.environ))
    for tool in RUST_TOOLS:
        assert shutil.which(tool, path=env["PATH"]) is None, f"{tool} is still on PATH"

    python = os.environ.get("RAWCORE_WHEEL_PYTHON", sys.executable)
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", venv], check=True, env=env, timeout=120)
    bin_dir = venv / "bin"

    def run(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args],
            cwd=tmp_path,  # not the checkout: nothing may be imported from python/
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    pip = run(
        bin_dir / "python",
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--only-binary",
        ":all:",
        WHEEL,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr

    where = run(bin_dir / "python", "-c", "import rawcore._core as c; print(c.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    # libopus (in-band FEC decoding and re-encoding) is linked into the extension: the wheel
    # loads no system libopus.
    extension = Path(where.stdout.strip()).read_bytes()
    assert b"opus_decode_float" in extension and b"libopus.so" not in extension

    version = run(bin_dir / "rawcore", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"rawcore {WHEEL.name.split('-')[1]}"

    table = run(bin_dir / "rawcore", "list-tracks", "--input-file", SAMPLE_ZIP)
    assert table.returncode == 0, table.stderr
    assert table.stderr == ""
    lines = table.stdout.splitlines()
    assert lines[0].startswith("Call default:call-123"), table.stdout
    assert "3 participant(s), 4 session(s), 9 track(s)" in lines[0]
    assert len(lines) == 3 + 9

    listing = run(
        bin_dir / "rawcore", "list-tracks", "--input-file", SAMPLE_ZIP, "--format", "json"
    )
    assert listing.returncode == 0, listing.stderr
    doc = json.loads(listing.stdout)
    assert doc["schema"] == "rawcore.list-tracks/1"
    assert {t["codec"] for t in doc["tracks"]} == {"opus", "vp8", "vp9", "h264"}
    assert all(t["packets"] > 0 for t in doc["tracks"])

    audio = run(
        bin_dir / "rawcore", "extract-audio", "--input-file", SAMPLE_ZIP, "-o", tmp_path / "a"
    )
    assert audio.returncode == 0, audio.stderr
    assert len(audio.stdout.split()) == 5
