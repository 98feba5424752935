"""Track files with known content for compose tests, written with PyAV (libx264, PCM): solid
colour videos with flash frames at known instants, and sine beeps at known times."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

RATE = 48_000
WHITE = (255, 255, 255)


def solid_video(
    path: Path,
    size: tuple[int, int],
    fps: int,
    seconds: float,
    rgb: tuple[int, int, int],
    flashes_ms: Sequence[int] = (),
    flash_rgb: tuple[int, int, int] = WHITE,
    gop: int | None = None,
) -> Path:
    """`seconds` of one colour at `fps`; the frame starting at each of `flashes_ms` (a whole
    frame's start) is `flash_rgb` instead. `gop`: a keyframe at least every so many frames
    (x264's own default otherwise)."""
    import av

    w, h = size
    flash_frames = {round(ms * fps / 1000) for ms in flashes_ms}
    plain = np.empty((h, w, 3), np.uint8)
    plain[:] = rgb
    bright = np.empty((h, w, 3), np.uint8)
    bright[:] = flash_rgb
    with av.open(str(path), "w", format="matroska") as out:
        options = {"preset": "ultrafast", "crf": "8"}
        stream: Any = out.add_stream("libx264", rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(bright if i in flash_frames else plain, "rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def tone(seconds: float, bursts: Sequence[tuple[float, float, float]], amp: float = 0.5) -> Any:
    """Silence with sine bursts `(start_s, length_s, freq)`."""
    t = np.arange(round(seconds * RATE)) / RATE
    x = np.zeros_like(t)
    for start, length, freq in bursts:
        on = (t >= start) & (t < start + length)
        x[on] = amp * np.sin(2 * np.pi * freq * (t[on] - start))
    return x


def wav(path: Path, samples: Any) -> Path:
    import av

    ints = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)
    with av.open(str(path), "w", format="wav") as out:
        stream: Any = out.add_stream("pcm_s16le", rate=RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(ints.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def opus_mkv(path: Path, samples: Any) -> Path:
    """Mono float samples at `RATE` as Opus in Matroska (what recordings store), by libopus."""
    import av

    with av.open(str(path), "w", format="matroska") as out:
        stream: Any = out.add_stream("libopus", rate=RATE)
        stream.layout = "mono"
        block = 960
        pcm = np.zeros(-(-len(samples) // block) * block, np.float32)
        pcm[: len(samples)] = samples
        for i in range(0, len(pcm), block):
            frame = av.AudioFrame.from_ndarray(
                pcm[i : i + block].reshape(1, -1), format="flt", layout="mono"
            )
            frame.sample_rate = RATE
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_scene(folder: Path, doc: dict[str, Any]) -> Path:
    doc = {"schema": "rawcore.scene/1", "recording_id": "rec", "start_unix_ms": 0, **doc}
    path = folder / "scene.json"
    path.write_text(json.dumps(doc))
    return path


def decode_video(path: Path) -> tuple[list[Any], list[float]]:
    """Every frame as a (h * 3 / 2, w) yuv420p array, and its time (s)."""
    import av

    frames, times = [], []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="yuv420p"))
            times.append(float(f.time))
    return frames, times


def decode_audio(path: Path) -> Any:
    """The first audio stream as float mono (channels averaged) at its rate."""
    import av

    parts = []
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for f in c.decode(audio=0):
            for g in resampler.resample(f):
                parts.append(g.to_ndarray().reshape(-1))
        for g in resampler.resample(None):
            parts.append(g.to_ndarray().reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def onsets(x: Any, freq: float, threshold: float = 0.05) -> list[float]:
    """Times (s) where a burst of `freq` starts: the 1 ms envelope crossing `threshold` after
    at least 50 ms below it."""
    block = RATE // 1000
    n = len(x) // block
    env = np.abs(x[: n * block]).reshape(n, block).max(axis=1)
    out: list[float] = []
    quiet = 50
    for i, e in enumerate(env):
        if e >= threshold and quiet >= 50:
            j = i * block
            seg = np.abs(x[j : j + block])
            out.append((j + int(np.argmax(seg >= threshold))) / RATE)
            quiet = 0
        elif e < threshold:
            quiet += 1
        else:
            quiet = 0
    del freq
    return out
