"""WAV (RIFF) headers for PCM that is streamed as it is produced.

The stdlib ``wave`` writer needs a seekable file to write the sizes once the data is known; a streamed
answer sends the header first, so the sizes say "unknown length" the way streaming encoders do (the
largest value): players and ``wave`` itself read such a file to its end."""

from __future__ import annotations

import struct

_UNKNOWN = 0xFFFFFFFF


def header(*, rate: int, channels: int = 1, sample_width: int = 2) -> bytes:
    """A 44-byte header for little-endian PCM of unknown length."""
    block = channels * sample_width
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, sample_width * 8)
    return (b"RIFF" + struct.pack("<I", _UNKNOWN) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", _UNKNOWN - 36))
