"""compose: a scene rendered offline into one MP4 (`rawcore compose`).

Rooms, bottom first: `edits` (the `rawcore.edits/1` file) and `timemap` (output time to scene
time, for cuts and ranges); `feeds` (each host's picture: decoded, held or a placeholder tile)
and `audio` (the scene's mix with the edits, cut with crossfades); `render` (the frame loop,
the core's compositor, the encoders and the file).
"""

from rawcore.pipeline.compose.edits import Edits, load_edits
from rawcore.pipeline.compose.render import (
    DEFAULT_PRESET,
    X264_PRESETS,
    ComposeReport,
    compose,
    parse_range,
)
from rawcore.pipeline.compose.timemap import TimeMap, build_time_map

__all__ = [
    "DEFAULT_PRESET",
    "X264_PRESETS",
    "ComposeReport",
    "Edits",
    "TimeMap",
    "build_time_map",
    "compose",
    "load_edits",
    "parse_range",
]
