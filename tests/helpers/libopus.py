"""The system's libopus through ctypes: a reference decoder independent of rawcore's own build.

rawcore bundles its own libopus; tests that want "what libopus itself makes of these packets"
(in-band FEC decoding, concealment) load the shared library GStreamer's opus plugin uses
(`libopus.so.0`, Debian's libopus0) instead, so the reference is not our code. `Decoder.decode`
mirrors `opus_decode`; `decode_stream` plays a track's received packets the way a receiver
with a jitter buffer does: each lost frame rebuilt from its successor's in-band FEC when asked
to (`opus_decode(..., decode_fec=1)` on the next packet), else concealed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Decoder", "decode_stream", "libopus_available"]

RATE = 48_000


@cache
def _lib() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("opus")
    for candidate in (name, "libopus.so.0"):
        if candidate is None:
            continue
        try:
            lib = ctypes.CDLL(candidate)
        except OSError:
            continue
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_void_p]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decode_float.restype = ctypes.c_int
        lib.opus_decode_float.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.opus_get_version_string.restype = ctypes.c_char_p
        return lib
    return None


def libopus_available() -> bool:
    """True if the system's libopus can be loaded."""
    return _lib() is not None


def version() -> str:
    lib = _lib()
    return "" if lib is None else lib.opus_get_version_string().decode()


class Decoder:
    """One `OpusDecoder` at 48 kHz; output is float32, channels averaged to mono."""

    def __init__(self, channels: int = 1) -> None:
        lib = _lib()
        if lib is None:
            raise RuntimeError("libopus not found")
        self._lib = lib
        self.channels = channels
        err = ctypes.c_int(0)
        self._st = lib.opus_decoder_create(RATE, channels, ctypes.byref(err))
        if err.value != 0 or not self._st:
            raise RuntimeError(f"opus_decoder_create failed: {err.value}")

    def __del__(self) -> None:
        st = getattr(self, "_st", None)
        if st:
            self._lib.opus_decoder_destroy(st)

    def decode(self, packet: bytes | None, frame_size: int, *, fec: bool = False) -> Any:
        """`opus_decode_float`: a packet, or None for a lost one (concealment); with `fec`,
        frame `packet` carries in-band FEC for is decoded instead (the one before it)."""
        out = np.zeros(frame_size * self.channels, dtype=np.float32)
        data = None if packet is None else bytes(packet)
        n = self._lib.opus_decode_float(
            self._st,
            data,
            0 if data is None else len(data),
            out.ctypes.data,
            frame_size,
            int(fec),
        )
        if n < 0:
            raise ValueError(f"opus_decode_float failed: {n}")
        return out[: n * self.channels].reshape(n, self.channels).mean(axis=1)


def decode_stream(
    frames: Sequence[bytes | None], frame_size: int, *, fec: bool, channels: int = 1
) -> npt.NDArray[np.float32]:
    """Decode a track frame slot by frame slot (None: the packet was lost), every slot
    `frame_size` samples. A lost slot followed by a received packet is decoded from that
    packet's in-band FEC when `fec` (libopus conceals it when the packet has none), else
    concealed, as a receiver's jitter buffer does. No pre-skip is removed."""
    dec = Decoder(channels)
    out: list[npt.NDArray[np.float32]] = []
    for k, packet in enumerate(frames):
        if packet is not None:
            out.append(dec.decode(packet, frame_size))
            continue
        successor = frames[k + 1] if k + 1 < len(frames) else None
        if fec and successor is not None:
            out.append(dec.decode(successor, frame_size, fec=True))
        else:
            out.append(dec.decode(None, frame_size))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
