"""`rawcore compose`: a scene rendered offline into one H.264 + AAC MP4.

Everything is checked before any work starts: the scene (its own loader), the edits, the
range, that every track file is there. Then one pass: for output frame `n` the time map gives
the scene time; the layout and background in force there are drawn by the core's compositor
(background, then each host's picture in `z` order, cover-scaled into its box and clipped to
its shape), straight into one of a few reusable `av.VideoFrame`s (no array between the canvas
and the encoder); the frame goes to libx264 (its own frame threads, as `ffmpeg` runs it) on an
encoder thread while the next one is composed. A frame that would show exactly what the last
one showed (the same background, layout and picture ids: every source held) is not composed
again: the last frame is queued again under the next timestamp.
Audio follows the same time map (`audio.output_blocks`) and is encoded as AAC beside the
video, a second of it ahead at most, so memory stays flat in the call's length. Each video
track decodes on a thread of its own. The file is written under a temporary name with the
index at the front (`movflags=faststart`) and renamed into place only when complete.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from rawcore._core import Compositor, rgb_to_yuv
from rawcore.errors import InputError, OutputError, SceneError
from rawcore.media.files import atomic_path, prepare_output_dir
from rawcore.pipeline.compose.audio import SceneAudio, output_blocks
from rawcore.pipeline.compose.edits import NO_EDITS, Edits, load_edits
from rawcore.pipeline.compose.feeds import Feed, Picture, feed_tracks, still_image
from rawcore.pipeline.compose.timemap import TimeMap, build_time_map
from rawcore.pipeline.scene.model import Scene, SceneTrack, load_scene, track_file

Preset = Literal["fast", "balanced", "quality"]
#: `--preset` to libx264's preset.
X264_PRESETS: dict[str, str] = {"fast": "superfast", "balanced": "veryfast", "quality": "medium"}
DEFAULT_PRESET: Preset = "balanced"
AUDIO_RATE = 48_000
AUDIO_CHANNELS = 2
AUDIO_BIT_RATE = 160_000
_CRF = "23"
#: Frames queued for the encoder thread.
_ENCODE_AHEAD = 4
#: Output frames the render loop writes into in turn: more than can be queued or encoding at
#: once, so a frame is never rewritten before libx264 has taken it.
_POOL = _ENCODE_AHEAD + 3


@dataclass(frozen=True)
class ComposeReport:
    """What `compose` wrote."""

    path: Path
    frames: int
    fps: float
    duration_ms: int
    #: Scene time inside the range left out (the pauses, with `trim_pauses`).
    cut_ms: int
    audio_samples: int
    preset: str
    #: The decoding work: video frames decoded over all feeds, and audio samples (at the
    #: output rate) over all tracks. A range costs about its own length, wherever it sits.
    decoded_video_frames: int = 0
    decoded_audio_samples: int = 0


def parse_range(text: str) -> tuple[int, int]:
    """`START_MS-END_MS` (the scene's original time) as a pair; `SceneError` otherwise."""
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ValueError
        a, b = int(start), int(end)
    except ValueError:
        raise SceneError(f"range {text!r}: expected START_MS-END_MS, e.g. 60000-90000") from None
    if a < 0 or b <= a:
        raise SceneError(f"range {text!r}: the end must come after the start, both >= 0")
    return a, b


def _check_files(scene: Scene, scene_path: Path) -> None:
    for t in scene.tracks:
        if not track_file(scene_path, t).is_file():
            raise SceneError(f"{scene_path}: track {t.path!r} ({t.participant_id}): no such file")
    for b in scene.backgrounds:
        if b.image is not None and not (scene_path.resolve().parent / b.image).is_file():
            raise SceneError(f"{scene_path}: background image {b.image!r}: no such file")


def _hex_yuv(color: str) -> tuple[int, int, int]:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return rgb_to_yuv(r, g, b)


class _Keyframes:
    """The layout or background in force at a time, for times that only move forward (a
    cursor over the scene's keyframes: the scene's rule, last `t_ms` at or before `t`)."""

    def __init__(self, times: list[int]) -> None:
        self.times = times
        self.i = -1

    def at(self, t_ms: int) -> int:
        if self.i >= 0 and self.times[self.i] > t_ms:  # moved back: search again
            self.i = bisect.bisect_right(self.times, t_ms) - 1
        while self.i + 1 < len(self.times) and self.times[self.i + 1] <= t_ms:
            self.i += 1
        return self.i


class _Encoder:
    """The output container, written by one thread: video frames and audio blocks queued by
    the render loop are encoded (libx264, AAC) and muxed there, so encoding overlaps
    composing."""

    def __init__(self, path: Path, scene: Scene, preset: str) -> None:
        import av

        self.rate = Fraction(scene.canvas.fps).limit_denominator(1001)
        try:
            self.out: Any = av.open(
                str(path), "w", format="mp4", options={"movflags": "+faststart"}
            )
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"{path}: cannot write ({exc})") from None
        video: Any = self.out.add_stream(
            "libx264", rate=self.rate, options={"preset": X264_PRESETS[preset], "crf": _CRF}
        )
        video.width, video.height = scene.canvas.width, scene.canvas.height
        video.pix_fmt = "yuv420p"
        # PyAV asks for slice threads, which make x264 split every frame; frame threads (what
        # the ffmpeg command line asks for) keep both cores busier.
        video.thread_type = "AUTO"
        video.time_base = 1 / self.rate
        audio: Any = self.out.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "stereo"
        audio.bit_rate = AUDIO_BIT_RATE
        self.video, self.audio = video, audio
        self.audio_pts = 0
        self.jobs: queue.Queue[tuple[str, Any] | None] = queue.Queue(_ENCODE_AHEAD)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="rawcore-compose-encode")
        self.thread.daemon = True
        self.thread.start()

    def _run(self) -> None:
        try:
            while (job := self.jobs.get()) is not None:
                kind, item = job
                if kind == "video":
                    pts, frame = item
                    frame.pts = pts  # set here: a held frame is queued again under a new pts
                    self.out.mux(self.video.encode(frame))
                else:
                    self.out.mux(self.audio.encode(item))
            self.out.mux(self.video.encode(None))
            self.out.mux(self.audio.encode(None))
        except BaseException as exc:
            self.error = exc
            with contextlib.suppress(queue.Empty):  # unblock a waiting producer
                while True:
                    self.jobs.get_nowait()

    def _put(self, job: tuple[str, Any] | None) -> None:
        if self.error is not None:
            raise self.error
        while self.thread.is_alive():
            with contextlib.suppress(queue.Full):
                self.jobs.put(job, timeout=0.1)
                return
        if self.error is not None:
            raise self.error

    def video_frame(self, n: int, frame: Any) -> None:
        """Queue output frame `n`: an `av.VideoFrame` not written again before it is encoded
        (`_FramePool`)."""
        self._put(("video", (n, frame)))

    def audio_block(self, samples: Any) -> None:
        import av

        if not len(samples):
            return
        planar = samples.T.copy() if samples.shape[1] == AUDIO_CHANNELS else None
        if planar is None:
            import numpy as np

            planar = np.ascontiguousarray(np.repeat(samples.T, AUDIO_CHANNELS, axis=0))
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self.audio_pts
        self.audio_pts += len(samples)
        self._put(("audio", frame))

    def finish(self) -> None:
        self._put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        self.out.close()

    def abort(self) -> None:
        with contextlib.suppress(BaseException):
            while self.thread.is_alive():
                with contextlib.suppress(queue.Full):
                    self.jobs.put(None, timeout=0.1)
            self.thread.join()
        with contextlib.suppress(Exception):
            self.out.close()


class _FramePool:
    """The encoder's input frames, allocated once and written in turn by the compositor
    (`Compositor.frame_into` into the frames' own planes: no array between them)."""

    def __init__(self, width: int, height: int) -> None:
        import av
        import numpy as np

        self.frames: list[Any] = []
        self.views: list[tuple[Any, Any, Any]] = []
        self.strides: list[tuple[int, int, int]] = []
        for _ in range(_POOL):
            frame = av.VideoFrame(width, height, "yuv420p")
            planes = frame.planes
            self.frames.append(frame)
            y, u, v = (np.frombuffer(memoryview(p), np.uint8) for p in planes)
            self.views.append((y, u, v))
            self.strides.append((planes[0].line_size, planes[1].line_size, planes[2].line_size))
        self.i = 0

    def fill(self, comp: Compositor) -> Any:
        """The canvas copied into the next frame of the pool, which is returned."""
        i = self.i
        self.i = (i + 1) % _POOL
        comp.frame_into(self.views[i], self.strides[i])
        return self.frames[i]


def compose(
    scene_path: str | Path,
    out_path: str | Path,
    *,
    edits_path: str | Path | None = None,
    trim_pauses: bool = False,
    range_ms: tuple[int, int] | None = None,
    clip: bool = False,
    preset: Preset = DEFAULT_PRESET,
    progress: Callable[[float], None] | None = None,
) -> ComposeReport:
    """Render the scene at `scene_path` into the MP4 `out_path` (see the module docstring).

    `range_ms` (scene time, before pauses are cut) or `clip` (the scene's clip) renders a part;
    `trim_pauses` cuts the scene's pauses from picture and sound at the same instants.
    Raises `SceneError` for a scene, edits file or range that cannot be rendered (before any
    work), `InputError` for a track that cannot be decoded, `OutputError` when the output
    cannot be written; no partial file is left behind.
    """
    if preset not in X264_PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(X264_PRESETS)}")
    scene_file = Path(scene_path)
    scene = load_scene(scene_file)
    edits = NO_EDITS if edits_path is None else load_edits(edits_path, scene)
    if clip:
        if range_ms is not None:
            raise SceneError("give --range or --clip, not both")
        if scene.clip is None:
            raise SceneError(f"{scene_file}: the scene has no clip")
        range_ms = (scene.clip.start_ms, scene.clip.end_ms)
    time_map = build_time_map(scene, range_ms=range_ms, trim_pauses=trim_pauses)
    _check_files(scene, scene_file)
    out = Path(out_path)
    out_dir = prepare_output_dir(out.parent if str(out.parent) else Path("."))

    with contextlib.ExitStack() as stack, atomic_path(out_dir, out.name) as tmp:
        frames, work = _render(scene, scene_file, edits, time_map, tmp, preset, stack, progress)
    audio_samples = round(time_map.duration_ms * AUDIO_RATE / 1000)
    return ComposeReport(
        path=out,
        frames=frames,
        fps=scene.canvas.fps,
        duration_ms=time_map.duration_ms,
        cut_ms=time_map.cut_ms,
        audio_samples=audio_samples,
        preset=preset,
        decoded_video_frames=work[0],
        decoded_audio_samples=work[1],
    )


def _render(
    scene: Scene,
    scene_file: Path,
    edits: Edits,
    time_map: TimeMap,
    tmp: Path,
    preset: str,
    stack: contextlib.ExitStack,
    progress: Callable[[float], None] | None,
) -> tuple[int, tuple[int, int]]:
    """Encode the output; the frame count and the decoding work (video frames, audio
    samples)."""
    canvas = scene.canvas

    def resolve(t: SceneTrack) -> Path:
        return track_file(scene_file, t)

    names = {t.participant_id: t.name for t in scene.tracks}
    feeds: dict[tuple[str, str], Feed] = {}
    for k in scene.layout:
        for h in k.hosts:
            key = (h.participant_id, h.source)
            if key in feeds:
                continue
            tracks = [
                t for t in scene.tracks if t.kind == "video" and (t.participant_id, t.source) == key
            ]
            e = edits.of(h.participant_id)
            feed = Feed(
                names.get(h.participant_id, h.participant_id),
                h.participant_id,
                feed_tracks(
                    tracks, resolve, e.video if h.source == "camera" else None, scene.duration_ms
                ),
            )
            stack.callback(feed.close)
            feeds[key] = feed
    images: dict[str, Picture] = {}
    layouts = _Keyframes([k.t_ms for k in scene.layout])
    backgrounds = _Keyframes([b.t_ms for b in scene.backgrounds])
    stacked = [sorted(k.hosts, key=lambda h: h.z) for k in scene.layout]

    audio = SceneAudio(
        scene,
        resolve,
        edits,
        AUDIO_RATE,
        AUDIO_CHANNELS,
        stack,
        from_ms=time_map.segments[0].scene_start_ms,
    )
    blocks = output_blocks(audio, time_map)
    comp = Compositor(canvas.width, canvas.height)
    encoder = _Encoder(tmp, scene, preset)
    frames = max(1, math.ceil(time_map.duration_ms * canvas.fps / 1000 - 1e-9))
    fps = Fraction(encoder.rate)
    audio_done = 0
    pool = _FramePool(canvas.width, canvas.height)
    # What the last frame showed: the background and layout in force and the id of every
    # picture drawn. When the next frame would show the same (every source held), the last
    # output frame is queued again: nothing is composed or copied.
    shown: tuple[int, ...] | None = None
    frame: Any = None
    try:
        for n in range(frames):
            out_ms = float(n * 1000 / fps)
            t = time_map.scene_ms(out_ms)
            t_int = math.floor(t + 1e-6)
            b = backgrounds.at(t_int)
            i = layouts.at(t_int)
            hosts = stacked[i] if i >= 0 else []
            pics = [feeds[(h.participant_id, h.source)].picture_at(t) for h in hosts]
            now = (b, i, *(p.ident for p in pics))
            if now != shown:
                if b < 0:
                    comp.fill(16, 128, 128)
                else:
                    bg = scene.backgrounds[b]
                    if bg.color is not None:
                        comp.fill(*_hex_yuv(bg.color))
                    else:
                        assert bg.image is not None  # the scene model sets exactly one
                        if bg.image not in images:
                            images[bg.image] = still_image(scene_file.resolve().parent / bg.image)
                        _draw(comp, images[bg.image], (0.0, 0.0, 1.0, 1.0), "rect", 0.0)
                for h, pic in zip(hosts, pics, strict=True):
                    _draw(comp, pic, (h.x, h.y, h.w, h.h), h.shape, h.radius)
                frame = pool.fill(comp)
                shown = now
            encoder.video_frame(n, frame)
            # Audio up to a second past this frame.
            want = (n + 1) * AUDIO_RATE / fps + AUDIO_RATE
            while audio_done < want:
                block = next(blocks, None)
                if block is None:
                    audio_done = 1 << 62
                    break
                encoder.audio_block(block)
                audio_done += len(block)
            if progress is not None and n % 30 == 0:
                progress(n / frames)
        for block in blocks:
            encoder.audio_block(block)
        encoder.finish()
    except BaseException:
        encoder.abort()
        raise
    if progress is not None:
        progress(1.0)
    return frames, (sum(f.decoded_frames for f in feeds.values()), audio.decoded_samples)


def _draw(
    comp: Compositor,
    pic: Picture,
    box: tuple[float, float, float, float],
    shape: Any,
    radius: float,
) -> None:
    comp.draw(pic.planes, pic.strides, pic.width, pic.height, box, shape, radius, pic.ident)
