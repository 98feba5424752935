"""What each host shows: pictures decoded from the scene's video tracks, held, or a tile.

A `Feed` is one participant's camera or screen. It holds the scene's video tracks of that feed
(or the edits' replacement) in time order and answers `picture_at(t)`: the latest frame at or
before scene time `t` of the track that covers `t`. A track decodes on a thread of its own
(PyAV releases the GIL) a few frames ahead, so memory stays flat. Inside a track a gap holds
the last frame (a frozen picture, never garbage); before a participant's first frame, after a
track ends, or where no track covers `t`, the feed shows a placeholder tile: the
participant's initials on a colour of their own. Pictures are NumPy views of the decoded planes
(no copy) that the compositor borrows.

A track opened after its start (a `--range` late in the call, a host that first shows up late)
seeks to the keyframe before the time wanted and decodes forward from there; a feed that goes
unseen for longer than `_SEEK_AFTER_MS` (off the layout, or across a cut pause) is reopened the
same way when it shows again, rather than decoding everything it missed. So the decoding work
follows what is shown, wherever it sits in the call; `Feed.decoded_frames` counts it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import queue
import re
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rawcore.errors import InputError
from rawcore.pipeline.compose.edits import Replacement
from rawcore.pipeline.scene.model import SceneTrack

#: Frames a track decodes ahead of the render.
_AHEAD = 6
#: Seek into a track rather than decode up to the first frame needed when it is this far in.
_SEEK_AFTER_MS = 2_000
#: A frame stamped this close after `t` still counts as at `t` (float rounding of pts).
_EPSILON_MS = 0.5
_TILE = 256
_FORMATS = ("yuv420p", "yuvj420p")
_IDS = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Picture:
    """An I420 picture as the compositor takes it; `keep` holds what the planes live in."""

    planes: tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]
    strides: tuple[int, int, int]
    width: int
    height: int
    keep: Any = None
    #: Unique to this picture's content, so the compositor may reuse its scaled pixels.
    ident: int = 0


def picture_of(frame: Any) -> Picture:
    """A decoded `av.VideoFrame` as a `Picture` (converted to yuv420p if it is not)."""
    if frame.format.name not in _FORMATS:
        frame = frame.reformat(format="yuv420p")
    planes = frame.planes
    y, u, v = (np.frombuffer(p, np.uint8) for p in planes[:3])
    strides = (planes[0].line_size, planes[1].line_size, planes[2].line_size)
    return Picture((y, u, v), strides, frame.width, frame.height, frame, next(_IDS))


def initials(name: str) -> str:
    """Up to two letters: the first of the first two words (`Ada Lovelace` -> `AL`)."""
    words = [w for w in re.split(r"[\s._@-]+", name) if w]
    letters = "".join(w[0] for w in words[:2]).upper()
    return letters or "?"


def tile_color(key: str) -> tuple[int, int, int]:
    """A participant's own muted colour, the same on every run."""
    h = zlib.crc32(key.encode())
    return (60 + h % 120, 60 + (h >> 8) % 120, 60 + (h >> 16) % 120)


def placeholder(name: str, key: str) -> Picture:
    """The tile shown when a participant has no picture: initials on their colour."""
    import av
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (_TILE, _TILE), tile_color(key))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=_TILE * 3 // 8)
    draw.text((_TILE / 2, _TILE / 2), initials(name), fill=(240, 240, 240), font=font, anchor="mm")
    frame = av.VideoFrame.from_image(img)  # type: ignore[no-untyped-call]
    return picture_of(frame.reformat(format="yuv420p"))


def still_image(path: Path) -> Picture:
    """A background image (any format PyAV or Pillow reads) as a picture."""
    import av
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            frame = av.VideoFrame.from_image(img.convert("RGB"))  # type: ignore[no-untyped-call]
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{path}: cannot read the background image ({exc})") from None
    return picture_of(frame.reformat(format="yuv420p"))


class TrackFrames:
    """One video file's frames on the scene clock (file time 0 at `start_ms`), decoded ahead on
    a thread. `frame_at(t)` moves forward only."""

    def __init__(self, path: Path, start_ms: float, end_ms: float, from_ms: float) -> None:
        import av

        self.path = path
        self.start_ms = start_ms
        self.end_ms = end_ms
        try:
            self._container: Any = av.open(str(path))
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"{path}: cannot open video ({exc})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{path}: has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        #: Frames decoded so far (the work done; a few run ahead of what is shown).
        self.decoded = 0
        into = from_ms - start_ms
        if into > _SEEK_AFTER_MS and self._stream.time_base is not None:
            with contextlib.suppress(av.error.FFmpegError):
                target = int((into / 1000) / self._stream.time_base)
                self._container.seek(target, stream=self._stream, backward=True)
        self._queue: queue.Queue[tuple[float, Any] | BaseException | None] = queue.Queue(_AHEAD)
        self._stop = threading.Event()
        self._current: tuple[float, Picture] | None = None
        self._next: tuple[float, Any] | None = None
        self._done = False
        self._thread = threading.Thread(target=self._decode, name="rawcore-compose-decode")
        self._thread.daemon = True
        self._thread.start()

    def _decode(self) -> None:
        import av

        try:
            for frame in self._container.decode(self._stream):
                self.decoded += 1
                if frame.time is None:
                    continue
                if not self._put((self.start_ms + frame.time * 1000, frame)):
                    return
            self._put(None)
        except av.error.FFmpegError as exc:
            self._put(InputError(f"{self.path}: cannot decode video ({exc})"))
        except BaseException as exc:  # handed to the render thread, which raises it
            self._put(exc)

    def _put(self, item: tuple[float, Any] | BaseException | None) -> bool:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.05)
                return True
        return False

    def _pull(self) -> tuple[float, Any] | None:
        if self._done:
            return None
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if item is None:
            self._done = True
        return item

    def frame_at(self, t_ms: float) -> Picture | None:
        """The latest frame at or before `t_ms`, held through gaps and after the file's end;
        None before the first."""
        if self._next is None and not self._done:
            self._next = self._pull()
        while self._next is not None and self._next[0] <= t_ms + _EPSILON_MS:
            when, frame = self._next
            self._next = self._pull()
            if self._next is None or self._next[0] > t_ms + _EPSILON_MS:
                self._current = (when, picture_of(frame))  # only the frame that shows
        return None if self._current is None else self._current[1]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._container.close()


@dataclass(frozen=True, slots=True)
class FeedTrack:
    path: Path
    start_ms: int
    end_ms: int


class Feed:
    """One participant's camera or screen over the scene; tracks open when first needed and
    close once passed."""

    def __init__(self, name: str, key: str, tracks: list[FeedTrack]) -> None:
        self.tracks = sorted(tracks, key=lambda t: t.start_ms)
        self.name = name
        self.key = key
        self._tile: Picture | None = None
        self._open: tuple[int, TrackFrames] | None = None
        #: The scene time of the last `picture_at`.
        self._last_ms = -math.inf
        self._closed_decoded = 0

    @property
    def decoded_frames(self) -> int:
        """Frames decoded for this feed so far, over all the track files it opened."""
        open_now = 0 if self._open is None else self._open[1].decoded
        return self._closed_decoded + open_now

    def tile(self) -> Picture:
        if self._tile is None:
            self._tile = placeholder(self.name, self.key)
        return self._tile

    def picture_at(self, t_ms: float) -> Picture:
        covering = [
            i for i, tr in enumerate(self.tracks) if tr.start_ms <= t_ms + _EPSILON_MS < tr.end_ms
        ]
        if not covering:
            self._close()
            return self.tile()
        i = covering[-1]
        unseen = t_ms - self._last_ms > _SEEK_AFTER_MS
        self._last_ms = t_ms
        if self._open is None or self._open[0] != i or unseen:
            self._close()
            tr = self.tracks[i]
            self._open = (i, TrackFrames(tr.path, tr.start_ms, tr.end_ms, t_ms))
        picture = self._open[1].frame_at(t_ms)
        return self.tile() if picture is None else picture

    def _close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._closed_decoded += self._open[1].decoded
            self._open = None

    def close(self) -> None:
        self._close()


def feed_tracks(
    tracks: list[SceneTrack],
    resolve: Callable[[SceneTrack], Path],
    replacement: Replacement | None,
    end_ms: int,
) -> list[FeedTrack]:
    """The files of one feed: its scene tracks, or the one replacement file from `offset_ms`
    to the scene's end."""
    if replacement is not None:
        return [FeedTrack(replacement.path, replacement.offset_ms, end_ms)]
    return [FeedTrack(resolve(t), t.start_ms, t.start_ms + t.duration_ms) for t in tracks]
