"""Reading a recording's captures: each analysed once in the Rust core, from the moment it is
found.

`start_reading` opens the recording (`rawcore.source.archive`), lists its captures and the SDP
beside each, starts analysing every capture on threads (the core releases the GIL) and returns;
`rawcore.recording.build` collects the reports, in capture order, and builds the model from
them. Starting is cheap on purpose: this module loads no model types, so a caller can overlap
the analysis with other work. The CLI starts it right after parsing its command line and loads
the command's media layers while the second core analyses.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal, NamedTuple

from rawcore import _core
from rawcore.errors import CaptureError, RawcoreError, SdpError
from rawcore.source.archive import Archive, Limits, open_archive
from rawcore.source.captures import RtpMapping
from rawcore.threads import InThreads, core_workers, start_in_threads

CAPTURE_SUFFIX = ".rtpdump"


class CaptureFile(NamedTuple):
    """A capture of the recording and the SDP beside it."""

    name: str  # archive member of the .rtpdump
    directory: str
    base: str
    sdp: str | None
    size: int


class SdpInfo(NamedTuple):
    """What a capture's SDP says about its payload types."""

    kind: Literal["audio", "video"] | None
    rtx_apt: tuple[tuple[int, int], ...]
    clock_rates: tuple[tuple[int, int], ...]
    codecs: dict[int, str]
    channels: dict[int, int]
    extmaps: tuple[tuple[int, str], ...] = ()


#: One capture's analysis: the report, and with `streams` the track's stream and gaps.
CaptureRead = tuple[_core.CaptureReport, _core.StreamColumns | None]


def _read_sdp(archive: Archive, name: str | None, warnings: list[str]) -> SdpInfo:
    empty = SdpInfo(None, (), (), {}, {})
    if name is None:
        return empty
    try:
        text = archive.read_bytes(name).decode("utf-8", errors="replace")
        sdp = _core.parse_sdp(text)
    except SdpError as exc:
        warnings.append(f"{name}: {exc}; codec and clock rate come from the metadata")
        return empty
    rtx: list[tuple[int, int]] = []
    rates: list[tuple[int, int]] = []
    codecs: dict[int, str] = {}
    channels: dict[int, int] = {}
    extmaps: list[tuple[int, str]] = []
    kind: Literal["audio", "video"] | None = None
    for media in sdp.media:
        extmaps.extend((e.id, e.uri) for e in media.extmaps)
        if kind is None and media.kind in ("audio", "video"):
            kind = "audio" if media.kind == "audio" else "video"
        rtx.extend(media.rtx)
        for rtpmap in media.rtpmaps:
            rates.append((rtpmap.payload_type, rtpmap.clock_rate))
            codecs[rtpmap.payload_type] = rtpmap.encoding.lower()
            if rtpmap.channels is not None:
                channels[rtpmap.payload_type] = rtpmap.channels
    return SdpInfo(kind, tuple(rtx), tuple(rates), codecs, channels, tuple(extmaps))


def _find_captures(names: Mapping[str, int]) -> list[CaptureFile]:
    captures = []
    for name, size in names.items():
        if not name.endswith(CAPTURE_SUFFIX):
            continue
        directory, filename = posixpath.split(name)
        base = filename[: -len(CAPTURE_SUFFIX)]
        sdp = posixpath.join(directory, base + ".sdp")
        captures.append(CaptureFile(name, directory, base, sdp if sdp in names else None, size))
    captures.sort(key=lambda c: c.name)
    return captures


class Reading:
    """A recording being read: its archive, its captures with their SDPs, and every capture's
    analysis under way. Made by `start_reading`; `rawcore.recording.build.recording_from`
    turns it into a `Recording` (which then owns the archive), or `close` ends it."""

    def __init__(self, source: str, archive: Archive, streams: bool, workers: int) -> None:
        self.source = source
        self.archive = archive
        self.streams = streams
        #: Every member's name and size.
        self.members = {m.name: m.size for m in archive.members()}
        self.captures = _find_captures(self.members)
        #: Each capture's SDP, and what reading them said (for the recording's warnings).
        self.sdp: dict[str, SdpInfo] = {}
        self.sdp_warnings: list[str] = []
        #: A failure to read an SDP, raised where the model is built (after the metadata's).
        self.sdp_error: Exception | None = None
        self._running: InThreads[CaptureFile, CaptureRead | RawcoreError] | None = None
        try:
            self.sdp = {c.name: _read_sdp(archive, c.sdp, self.sdp_warnings) for c in self.captures}
        except Exception as exc:  # handed over as it is, raised where it was raised before
            self.sdp_error = exc
            return
        if self.captures:
            self._running = start_in_threads(self._analyse, self.captures, workers)

    def _analyse(self, cap: CaptureFile) -> CaptureRead | RawcoreError:
        sdp = self.sdp[cap.name]
        try:
            with self.archive.open_buffer(cap.name) as buf:
                try:
                    rtx_apt, clock_rates = list(sdp.rtx_apt), list(sdp.clock_rates)
                    if self.streams:
                        return _core.analyze_capture_stream(
                            buf, rtx_apt=rtx_apt, clock_rates=clock_rates
                        )
                    report = _core.analyze_capture(buf, rtx_apt=rtx_apt, clock_rates=clock_rates)
                    return report, None
                except CaptureError as exc:
                    raise CaptureError(f"{cap.name}: {exc}") from None
        except RawcoreError as exc:  # this capture is skipped, with a warning
            return exc

    def results(self) -> Iterator[tuple[CaptureFile, CaptureRead | RawcoreError]]:
        """Each capture with its analysis (or the error that skips it), in capture order, each
        as soon as it and those before it are done."""
        if self._running is not None:
            yield from zip(self.captures, self._running, strict=True)
            self._running.close()  # every item done: the threads end here, none outlives this

    def close(self) -> None:
        """Stop analysing (the running captures finish first) and close the archive."""
        if self._running is not None:
            self._running.close()
        self.archive.close()


def start_reading(
    source: str | os.PathLike[str],
    *,
    s3_endpoint: str | None = None,
    cache_dir: Path | None = None,
    limits: Limits | None = None,
    workers: int | None = None,
    payload_types: Mapping[int, RtpMapping] | None = None,
    sdp: str | os.PathLike[str] | None = None,
    streams: bool = False,
) -> Reading:
    """Open a recording and start analysing its captures; the arguments are
    `rawcore.recording.build.open_recording`'s. Raises what opening the source raises."""
    archive = open_archive(
        source,
        cache_dir=cache_dir,
        limits=limits or Limits(),
        s3_endpoint=s3_endpoint,
        payload_types=payload_types,
        sdp=sdp,
    )
    try:
        return Reading(str(source), archive, streams, workers or core_workers())
    except BaseException:
        archive.close()
        raise
