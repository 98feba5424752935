"""Recordings held as packet captures (pcap, pcapng) or Janus `.mjr` files, read as archives.

The core splits each file into one rtpdump capture per RTP stream (`_core.split_capture`), so
every later stage reads these streams exactly as it reads a recorder's own captures. This
module lays the streams out as the members of a recording, in the archive's private temp
directory: ``<participant>/<session>/<base>.rtpdump`` beside a ``<base>.sdp`` that says the
stream's codec. A participant is a source address (pcap) or a file name without its
``-audio`` / ``-video`` suffix (`.mjr`); the session is the capture's file name.

A stream's codec comes, first to last, from: an SDP given with the capture (``call.sdp``
beside ``call.pcap``, or ``sdp=``), the ``payload_types`` mapping (the CLI's ``--pt
111=opus/48000/2``), the `.mjr` header, and last a guess from the payloads, which is said
in one warning. A stream nobody can name gets no SDP and a warning; an SSRC seen in one packet
only is a stray and is left out (a hostile capture may hold a new one in every packet). RTX
streams (an SDP's
``apt``) are left out: without the SDP's SSRC grouping nothing says which stream they repair.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rawcore import _core
from rawcore.errors import ArchiveError, InputError, OutputError, SdpError
from rawcore.source.members import Archive, Buffer, Limits, Member, MemberTable, map_file

#: Suffixes of the capture files a folder may hold instead of a recorder's tree.
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".mjr")

_MAGICS = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
    b"MJR00001",
    b"MJR00002",
    b"MEETECHO",
)
_PT_OPTION = re.compile(r"^(\d{1,3})=([A-Za-z0-9_.-]+)/(\d+)(?:/(\d+))?$")
_KIND_SUFFIX = re.compile(r"[-_.](audio|video|data)$", re.IGNORECASE)
_VIDEO_CODECS = frozenset({"vp8", "vp9", "h264", "h265", "av1"})


@dataclass(frozen=True)
class RtpMapping:
    """What a payload type means: an SDP ``rtpmap`` line."""

    codec: str
    clock_rate: int
    channels: int | None = None
    video: bool | None = None

    @property
    def kind(self) -> str:
        video = self.video if self.video is not None else self.codec in _VIDEO_CODECS
        return "video" if video else "audio"


def parse_pt_option(text: str) -> tuple[int, RtpMapping]:
    """``111=opus/48000/2`` → (111, opus at 48 kHz, 2 channels). Raises InputError."""
    m = _PT_OPTION.match(text.strip())
    if m is None or not 0 <= int(m[1]) <= 127:
        raise InputError(
            f"--pt {text!r}: expected PT=CODEC/CLOCK[/CHANNELS], e.g. 111=opus/48000/2"
        )
    channels = int(m[4]) if m[4] else None
    return int(m[1]), RtpMapping(m[2].lower(), int(m[3]), channels)


def looks_like_capture(path: Path) -> bool:
    """True for a pcap, pcapng or Janus `.mjr` file, by its first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return head.startswith(_MAGICS[:5]) or head in _MAGICS[5:]


def capture_files(folder: Path) -> list[Path]:
    """The pcap / pcapng / `.mjr` files directly in `folder`, when it holds no rtpdump tree."""
    found = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in CAPTURE_SUFFIXES and p.is_file()
    )
    if not found or any(folder.rglob("*.rtpdump")):
        return []
    return found


def _sdp_mappings(text: str, label: str) -> tuple[dict[int, RtpMapping], set[int]]:
    try:
        sdp = _core.parse_sdp(text)
    except SdpError as exc:
        raise InputError(f"{label}: {exc}") from None
    maps: dict[int, RtpMapping] = {}
    rtx: set[int] = set()
    for media in sdp.media:
        rtx.update(pt for pt, _apt in media.rtx)
        for r in media.rtpmaps:
            maps[r.payload_type] = RtpMapping(
                r.encoding.lower(), r.clock_rate, r.channels, media.kind == "video"
            )
    return maps, rtx


def _participant_of(path: Path) -> str:
    return _KIND_SUFFIX.sub("", path.stem) or path.stem


def _sdp_text(pt: int, m: RtpMapping) -> str:
    rtpmap = f"{m.codec}/{m.clock_rate}" + (f"/{m.channels}" if m.channels else "")
    return (
        "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=rawcore\r\nt=0 0\r\n"
        f"m={m.kind} 9 RTP/AVP {pt}\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:{pt} {rtpmap}\r\n"
    )


def _safe(part: str) -> str:
    """An address or file name as one path component (IPv6 colons kept; separators not)."""
    return re.sub(r"[/\\\x00]", "_", part) or "_"


class CaptureArchive(Archive):
    """pcap, pcapng and `.mjr` files presented as a recording of rtpdump captures."""

    kind = "capture"

    def __init__(
        self,
        paths: Sequence[Path],
        limits: Limits,
        temp_root: Path,
        *,
        payload_types: Mapping[int, RtpMapping] | None = None,
        sdp: str | None = None,
    ) -> None:
        self.path = paths[0] if len(paths) == 1 else paths[0].parent
        self._files: dict[str, Path] = {}
        self._texts: dict[str, bytes] = {}
        table = MemberTable(str(self.path), limits)
        super().__init__(self.path, limits, table.by_name, temp_root)
        try:
            for path in paths:
                self._split(path, table, payload_types or {}, sdp)
        except BaseException:
            self.close()
            raise

    def _split(
        self,
        path: Path,
        table: MemberTable,
        payload_types: Mapping[int, RtpMapping],
        sdp: str | None,
    ) -> None:
        size = path.stat().st_size
        if size > self.limits.max_member_size:
            raise ArchiveError(
                f"{path}: {size} bytes, over the {self.limits.max_member_size}-byte limit"
            )
        label = str(path)
        sidecar = path.with_suffix(".sdp")
        if sdp is None and sidecar.is_file():
            sdp = sidecar.read_text(encoding="utf-8", errors="replace")
            label = str(sidecar)
        sdp_maps, rtx = _sdp_mappings(sdp, label) if sdp is not None else ({}, set())
        if size == 0:
            raise ArchiveError(f"{path}: empty file")
        with map_file(path, size, what=str(path)) as buf:
            try:
                split = _core.split_capture(buf)
            except InputError as exc:
                raise type(exc)(f"{path}: {exc}") from None
        for offset, message in split.warnings:
            self.notes.append(f"{path}: {message} (byte {offset})")
        if split.skipped_not_rtp:
            self.notes.append(
                f"{path}: {split.skipped_not_rtp} UDP/TCP payload(s) that are not RTP or RTCP "
                "(STUN, DTLS, ...) skipped"
            )
        if split.mjr_encrypted:
            self.notes.append(f"{path}: end-to-end encrypted media; payloads will not decode")
        if not split.streams:
            self.notes.append(f"{path}: no RTP streams found")
        guessed: list[str] = []
        # An SSRC seen in one packet only is a stray (a probe, a corrupted header), not a
        # track; a hostile capture may hold one in every packet.
        strays = sum(1 for s in split.streams if s.rtp_packets < 2)
        if strays:
            self.notes.append(f"{path}: {strays} SSRC(s) seen in one packet only left out")
        for stream in split.streams:
            if stream.rtp_packets < 2:
                continue
            pt = stream.payload_type
            if pt in rtx:
                self.notes.append(
                    f"{path}: RTX stream {stream.ssrc:#010x} (payload type {pt}) left out"
                )
                continue
            mapping = sdp_maps.get(pt) or payload_types.get(pt)
            if mapping is None and stream.codec is not None and stream.clock_rate is not None:
                mapping = RtpMapping(stream.codec, stream.clock_rate, stream.channels, stream.video)
                if split.format != "mjr":
                    guessed.append(f"{stream.ssrc:#010x} pt {pt} → {stream.codec}")
            if split.format == "mjr":
                participant, session = _participant_of(path), path.stem
                base = f"{path.stem}-{stream.ssrc:08x}"
            else:
                participant, session = stream.src, path.stem
                base = f"{mapping.kind if mapping else 'media'}-{stream.ssrc:08x}"
            folder = f"{_safe(participant)}/{_safe(session)}"
            name = f"{folder}/{base}.rtpdump"
            if mapping is None:
                self.notes.append(
                    f"{path}: stream {stream.ssrc:#010x} (payload type {pt}) has no known codec; "
                    "name it with an SDP beside the capture or --pt PT=CODEC/CLOCK"
                )
            else:
                sdp_name = f"{folder}/{base}.sdp"
                text = _sdp_text(pt, mapping).encode()
                table.add(sdp_name, len(text))
                self._texts[sdp_name] = text
            self._write(name, stream.capture, table)
        if guessed:
            self.notes.append(
                f"{path}: no SDP or --pt for {len(guessed)} stream(s); codecs guessed from the "
                f"payloads ({'; '.join(guessed)}): give an SDP or --pt to make them exact"
            )

    def _write(self, name: str, data: bytes, table: MemberTable) -> None:
        table.add(name, len(data))
        target = self._private_temp_dir() / f"{len(self._files):06d}.rtpdump"
        try:
            target.write_bytes(data)
        except OSError as e:
            raise OutputError(f"cannot write {target}: {e.strerror or e}") from e
        self._files[name] = target

    def _open_buffer(self, member: Member) -> contextlib.AbstractContextManager[Buffer]:
        text = self._texts.get(member.name)
        if text is not None:
            return contextlib.nullcontext(text)
        return map_file(self._files[member.name], member.size, what=member.name)


def open_captures(
    paths: Sequence[Path],
    limits: Limits,
    temp_root: Path,
    *,
    payload_types: Mapping[int, RtpMapping] | None = None,
    sdp_path: str | os.PathLike[str] | None = None,
) -> CaptureArchive:
    """Open capture files as one recording; `sdp_path` names an SDP for all of them."""
    sdp = None
    if sdp_path is not None:
        try:
            sdp = Path(sdp_path).read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise InputError(f"{sdp_path}: cannot read the SDP: {e.strerror or e}") from e
    return CaptureArchive(paths, limits, temp_root, payload_types=payload_types, sdp=sdp)


__all__ = [
    "CAPTURE_SUFFIXES",
    "CaptureArchive",
    "RtpMapping",
    "capture_files",
    "looks_like_capture",
    "open_captures",
    "parse_pt_option",
]
