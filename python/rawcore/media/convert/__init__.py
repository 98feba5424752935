"""convert: MP4 from raw tracks and rawcore outputs, remuxed as they are or made editor-ready
(see `run`, `native`, `remux`, `editor`).

The names below load on first use (PEP 562), so `native` (the core's remux, which
`rawcore convert --mode remux` runs) is imported without FFmpeg and NumPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rawcore.media.convert.editor import (
        DEFAULT_CRF,
        DEFAULT_PRESET,
        PRESETS,
        EditorOptions,
    )
    from rawcore.media.convert.run import (
        FORMAT_VERSION,
        MODES,
        Mode,
        convert_file,
        convert_folder_track,
        convert_track,
        recording_room,
    )

_HOMES = {
    "DEFAULT_CRF": "editor",
    "DEFAULT_PRESET": "editor",
    "PRESETS": "editor",
    "EditorOptions": "editor",
    "FORMAT_VERSION": "run",
    "MODES": "run",
    "Mode": "run",
    "convert_file": "run",
    "convert_folder_track": "run",
    "convert_track": "run",
    "recording_room": "run",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "FORMAT_VERSION",
    "MODES",
    "PRESETS",
    "EditorOptions",
    "Mode",
    "convert_file",
    "convert_folder_track",
    "convert_track",
    "recording_room",
]
