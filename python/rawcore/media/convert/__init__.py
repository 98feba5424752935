"""convert: MP4 from raw tracks and rawcore outputs, remuxed as they are or made editor-ready
(see `run`, `remux`, `editor`)."""

from rawcore.media.convert.editor import DEFAULT_CRF, DEFAULT_PRESET, PRESETS, EditorOptions
from rawcore.media.convert.run import (
    FORMAT_VERSION,
    MODES,
    Mode,
    convert_file,
    convert_folder_track,
    convert_track,
)

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
]
