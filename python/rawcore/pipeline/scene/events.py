"""The studio's event log (`events.jsonl`): what the live studio did, read line by line.

One JSON object per line, `unix_ms` on the recorder's clock, in any order. The log is
streamed: a line is read, checked and reduced to what the scene keeps (layouts, pauses,
hooks, backgrounds, the canvas, the recording's start and stop), so memory is bounded by the
limits, not by the log: at most `MAX_EVENTS` lines of events and `MAX_LAYOUT_KEYFRAMES` layout
events, each over the limit a `SceneError` before any media work starts. Every problem names
the file and the line.

Contradictions are errors (a resume without a pause, a hook hidden that was never shown, a
second `recording_started`, a second canvas that differs from the first, a box outside the
canvas) unless one repair is the only reading: a pause while paused is the same pause (the
second is ignored), a pause or hook still open at the end closes at the recording's end, two
layouts at the same ms keep the later line. Each repair is a warning. Unknown event types and
unknown fields are kept for the scene's `extra` and warned about once each.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rawcore.errors import SceneError
from rawcore.pipeline.scene.model import (
    MAX_HOSTS,
    MAX_LAYOUT_KEYFRAMES,
    Background,
    Canvas,
    Host,
    background_from_dict,
    canvas_from_dict,
    host_from_dict,
)

#: Events (non-blank lines) one log may hold.
MAX_EVENTS = 1_000_000
#: The longest line read; a longer one is refused without reading it into memory whole.
MAX_LINE_BYTES = 1 << 20
#: Pause, resume, hook and background events each, like the scene's lists.
MAX_MARKS = MAX_LAYOUT_KEYFRAMES
#: Unknown events kept verbatim for `extra` (the rest are counted).
MAX_UNKNOWN_KEPT = 1_000
#: Largest `unix_ms`: JSON numbers beyond 2**53 are not exact integers in most readers.
MAX_UNIX_MS = 2**53

KNOWN_FIELDS: Mapping[str, frozenset[str]] = {
    "recording_started": frozenset({"recording_id", "room"}),
    "canvas": frozenset({"width", "height", "fps"}),
    "background": frozenset({"color", "image"}),
    "layout": frozenset({"hosts"}),
    "paused": frozenset(),
    "resumed": frozenset(),
    "hook_shown": frozenset({"hook_id", "text"}),
    "hook_hidden": frozenset({"hook_id"}),
    "recording_stopped": frozenset(),
}
_COMMON = frozenset({"unix_ms", "type"})
_HOST_FIELDS = frozenset({"participant_id", "source", "x", "y", "w", "h", "shape", "radius", "z"})


@dataclass(frozen=True, slots=True)
class TimedLayout:
    unix_ms: int
    line: int
    hosts: tuple[Host, ...]


@dataclass(frozen=True, slots=True)
class Mark:
    """A pause, resume, hook or background event, with its line for messages."""

    unix_ms: int
    line: int
    kind: str
    hook_id: str = ""
    text: str = ""


@dataclass(frozen=True, slots=True)
class Span:
    """A closed pause or hook display, in Unix ms."""

    start_unix_ms: int
    end_unix_ms: int
    hook_id: str = ""
    text: str = ""


@dataclass(frozen=True, slots=True)
class OpenSpan:
    """A pause or hook display as the log has it: no end when the log never closes it."""

    start_unix_ms: int
    end_unix_ms: int | None
    hook_id: str = ""
    text: str = ""


@dataclass
class EventLog:
    """What a log says, reduced to what the scene keeps; times still in Unix ms."""

    path: str
    recording_id: str | None = None
    started_unix_ms: int | None = None
    stopped_unix_ms: int | None = None
    canvas: Canvas | None = None
    backgrounds: list[tuple[int, int, Background]] = field(default_factory=list)
    layouts: list[TimedLayout] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    pauses: list[OpenSpan] = field(default_factory=list)
    hooks: list[OpenSpan] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    events: int = 0

    def participants(self) -> set[str]:
        return {h.participant_id for k in self.layouts for h in k.hosts}

    def spans(self, end_unix_ms: int) -> tuple[list[Span], list[Span]]:
        """Pauses and hook displays; what is still open closes at `end_unix_ms` (a warning)."""
        pauses = [
            Span(p.start_unix_ms, end_unix_ms if p.end_unix_ms is None else p.end_unix_ms)
            for p in self.pauses
        ]
        hooks = [
            Span(
                h.start_unix_ms,
                max(h.start_unix_ms, end_unix_ms) if h.end_unix_ms is None else h.end_unix_ms,
                h.hook_id,
                h.text,
            )
            for h in self.hooks
        ]
        pauses = [p for p in pauses if p.end_unix_ms > p.start_unix_ms]
        hooks.sort(key=lambda h: (h.start_unix_ms, h.end_unix_ms, h.hook_id))
        return pauses, hooks


def pair_marks(log: EventLog) -> None:
    """Pauses with their resumes and hooks shown with their hiding, in time order (line order
    for ties), into `log.pauses` and `log.hooks`; contradictions raise, repairs warn."""
    paused: Mark | None = None
    shown: dict[str, Mark] = {}
    for m in sorted(log.marks, key=lambda m: (m.unix_ms, m.line)):
        where = f"{log.path}: line {m.line}"
        if m.kind == "paused":
            if paused is not None:
                log.warnings.append(
                    f"{where}: paused while already paused (since line {paused.line}); "
                    "the earlier pause goes on"
                )
            else:
                paused = m
        elif m.kind == "resumed":
            if paused is None:
                raise SceneError(f"{where}: resumed without a pause before it")
            log.pauses.append(OpenSpan(paused.unix_ms, m.unix_ms))
            paused = None
        elif m.kind == "hook_shown":
            if m.hook_id in shown:
                log.warnings.append(
                    f"{where}: hook {m.hook_id!r} shown again while shown (since line "
                    f"{shown[m.hook_id].line}); the earlier display goes on"
                )
            else:
                shown[m.hook_id] = m
        elif m.kind == "hook_hidden":
            start = shown.pop(m.hook_id, None)
            if start is None:
                raise SceneError(f"{where}: hook {m.hook_id!r} hidden but never shown")
            log.hooks.append(OpenSpan(start.unix_ms, m.unix_ms, m.hook_id, start.text))
    if paused is not None:
        log.warnings.append(
            f"{log.path}: line {paused.line}: the pause is never resumed; it ends with the "
            "recording"
        )
        log.pauses.append(OpenSpan(paused.unix_ms, None))
    for m in sorted(shown.values(), key=lambda m: m.line):
        log.warnings.append(
            f"{log.path}: line {m.line}: hook {m.hook_id!r} is never hidden; it ends with the "
            "recording"
        )
        log.hooks.append(OpenSpan(m.unix_ms, None, m.hook_id, m.text))
    log.marks = []


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their numbers, each at most `MAX_LINE_BYTES`, read in a stream."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise SceneError(f"{path}: no such event log") from None
    except OSError as exc:
        raise SceneError(f"{path}: cannot be read ({exc.strerror})") from None
    with fh:
        number = 0
        while True:
            try:
                line = fh.readline(MAX_LINE_BYTES + 1)
            except OSError as exc:
                raise SceneError(f"{path}: cannot be read ({exc.strerror})") from None
            if not line:
                return
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                raise SceneError(
                    f"{path}: line {number}: longer than {MAX_LINE_BYTES} bytes; not an event"
                )
            if line.strip():
                yield number, line


#: One decoder for every line (making one per `json.loads` call is a third of the cost).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse(path: Path, number: int, line: bytes) -> dict[str, Any]:
    where = f"{path}: line {number}"
    try:
        data = _DECODER.decode(line.decode("utf-8"))
    except RecursionError:
        raise SceneError(f"{where}: JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise SceneError(f"{where}: not UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError and the constants refused above
        raise SceneError(f"{where}: not a JSON event ({str(exc).split(':')[0]})") from None
    if not isinstance(data, dict):
        raise SceneError(f"{where}: an event is a JSON object, not {type(data).__name__}")
    return data


def _unix_ms(data: dict[str, Any], where: object) -> int:
    value = data.get("unix_ms")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SceneError(f"{where}: unix_ms: an integer number of ms is required")
    if not 0 <= value <= MAX_UNIX_MS:
        raise SceneError(f"{where}: unix_ms: {value} is outside 0..{MAX_UNIX_MS}")
    return value


def _string(data: dict[str, Any], key: str, where: object, *, empty: bool = False) -> str:
    value = data.get(key, "" if empty else None)
    if not isinstance(value, str) or (not empty and not value) or len(value) > 4096:
        raise SceneError(f"{where}: {key}: a string (up to 4096 characters) is required")
    return value


class _Where:
    """`file: line N`, formatted only when a message needs it (most lines need none)."""

    __slots__ = ("name", "number")

    def __init__(self, name: str, number: int) -> None:
        self.name, self.number = name, number

    def __str__(self) -> str:
        return f"{self.name}: line {self.number}"

    def __format__(self, spec: str) -> str:
        return str(self)


class _Reader:
    def __init__(self, path: Path) -> None:
        self.log = EventLog(str(path))
        self.path = path
        self.name = str(path)
        self.warned: set[str] = set()
        self.unknown_fields: dict[str, set[str]] = {}
        self.unknown: list[dict[str, Any]] = []
        self.unknown_count = 0
        self.canvas_line = 0
        self.counts: dict[str, int] = {}

    def warn_once(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            self.log.warnings.append(message)

    def count(self, kind: str, limit: int, where: object) -> None:
        n = self.counts[kind] = self.counts.get(kind, 0) + 1
        if n > limit:
            raise SceneError(f"{where}: more than {limit} {kind} events, over the limit")

    def event(self, number: int, data: dict[str, Any]) -> None:
        log = self.log
        where = _Where(self.name, number)
        kind = data.get("type")
        if not isinstance(kind, str) or not kind:
            raise SceneError(f"{where}: type: a string is required")
        unix_ms = _unix_ms(data, where)
        known = KNOWN_FIELDS.get(kind)
        if known is None:
            self.unknown_count += 1
            if len(self.unknown) < MAX_UNKNOWN_KEPT:
                self.unknown.append({**data, "line": number})
            if "type:" + kind not in self.warned:
                self.warn_once(
                    "type:" + kind,
                    f"{where}: unknown event type {kind[:64]!r}; kept in the scene's extra",
                )
            return
        for name in data.keys() - known - _COMMON:
            self.unknown_fields.setdefault(kind, set()).add(name)
            self.warn_once(
                f"field:{kind}:{name}",
                f"{where}: unknown field {name[:64]!r} of {kind}; kept in the scene's extra",
            )
        if kind == "recording_started":
            if log.started_unix_ms is not None:
                raise SceneError(f"{where}: a second recording_started")
            log.started_unix_ms = unix_ms
            if "recording_id" in data:
                log.recording_id = _string(data, "recording_id", where)
            if "room" in data:
                log.extra["room"] = _string(data, "room", where, empty=True)
        elif kind == "recording_stopped":
            if log.stopped_unix_ms is not None:
                raise SceneError(f"{where}: a second recording_stopped")
            log.stopped_unix_ms = unix_ms
        elif kind == "canvas":
            canvas = canvas_from_dict(
                {k: data.get(k) for k in ("width", "height", "fps")}, where=str(where)
            )
            if log.canvas is None:
                log.canvas, self.canvas_line = canvas, number
            elif canvas != log.canvas:
                raise SceneError(
                    f"{where}: a canvas of {canvas.width}x{canvas.height} at {canvas.fps} fps "
                    f"differs from line {self.canvas_line}'s; a scene has one canvas"
                )
        elif kind == "background":
            self.count("background", MAX_MARKS, where)
            background = background_from_dict(
                {k: data[k] for k in ("color", "image") if k in data}, t_ms=0, where=str(where)
            )
            log.backgrounds.append((unix_ms, number, background))
        elif kind == "layout":
            self.count("layout", MAX_LAYOUT_KEYFRAMES, where)
            log.layouts.append(TimedLayout(unix_ms, number, self.hosts(data, where)))
        elif kind in ("paused", "resumed", "hook_shown", "hook_hidden"):
            self.count(kind, MAX_MARKS, where)
            hook_id = text = ""
            if kind.startswith("hook_"):
                hook_id = _string(data, "hook_id", where)
                if kind == "hook_shown":
                    text = _string(data, "text", where, empty=True)
            log.marks.append(Mark(unix_ms, number, kind, hook_id, text))

    def hosts(self, data: dict[str, Any], where: object) -> tuple[Host, ...]:
        raw = data.get("hosts")
        if not isinstance(raw, list):
            raise SceneError(f"{where}: hosts: a list is required")
        if len(raw) > MAX_HOSTS:
            raise SceneError(f"{where}: hosts: {len(raw)} hosts, more than {MAX_HOSTS}")
        hosts: list[Host] = []
        seen: set[tuple[str, str]] = set()
        for i, item in enumerate(raw):
            host = host_from_dict(item, where=f"{where}: hosts[{i}]")
            for name in item.keys() - _HOST_FIELDS:
                self.unknown_fields.setdefault("layout.hosts", set()).add(name)
                self.warn_once(
                    f"field:host:{name}",
                    f"{where}: unknown host field {name[:64]!r}; kept in the scene's extra",
                )
            key = (host.participant_id, host.source)
            if key in seen:
                raise SceneError(
                    f"{where}: hosts[{i}]: {host.participant_id}'s {host.source} is on screen "
                    "twice in one layout"
                )
            seen.add(key)
            hosts.append(host)
        return tuple(hosts)

    def finish(self) -> EventLog:
        log = self.log
        # Two layouts at one instant: the later line is what the studio showed last.
        by_time: dict[int, TimedLayout] = {}
        for k in log.layouts:
            old = by_time.get(k.unix_ms)
            if old is not None:
                log.warnings.append(
                    f"{self.path}: line {k.line}: a second layout at {k.unix_ms} (line "
                    f"{old.line}); the later line is kept"
                )
                if old.line > k.line:
                    continue
            by_time[k.unix_ms] = k
        log.layouts = [by_time[t] for t in sorted(by_time)]
        log.backgrounds.sort(key=lambda b: (b[0], b[1]))
        pair_marks(log)
        if self.unknown_count:
            log.extra["unknown_events"] = self.unknown
            if self.unknown_count > len(self.unknown):
                log.extra["unknown_events_dropped"] = self.unknown_count - len(self.unknown)
        if self.unknown_fields:
            log.extra["unknown_fields"] = {
                k: sorted(v) for k, v in sorted(self.unknown_fields.items())
            }
        return log


def read_event_log(path: str | os.PathLike[str]) -> EventLog:
    """Read and check an event log, streaming it; `SceneError` naming the line otherwise."""
    p = Path(path)
    reader = _Reader(p)
    events = 0
    for number, line in _lines(p):
        events += 1
        if events > MAX_EVENTS:
            raise SceneError(f"{p}: line {number}: more than {MAX_EVENTS} events, over the limit")
        reader.event(number, _parse(p, number, line))
    log = reader.finish()
    log.events = events
    return log
