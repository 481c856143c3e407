"""Standard PCM, the formats we accept, conversion to standard PCM, and the WAV container.

Everything downstream of this package (end-pointing, speech to text) consumes one format,
16 kHz mono 16-bit little-endian PCM ("standard PCM"), so that no engine ever has to ask
what it was given. This module is the one place that turns other formats into it: a
`Converter` per stream (resampling keeps state, so chunk boundaries do not click) and
`scan_wav`, the WAV reader shared by files and satellite payloads. It never opens devices
or files by name; `sources` does that.

WAV files are parsed here rather than with the stdlib `wave` module: in Python 3.11 `wave`
refuses WAVE_FORMAT_EXTENSIBLE, which sox writes for every 24-bit file and every file of more
than two channels, and it reads a truncated file without saying so.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]  # ships no py.typed marker

SAMPLE_RATE: Final = 16000
SAMPLE_WIDTH: Final = 2
CHANNELS: Final = 1
BYTES_PER_SECOND: Final = SAMPLE_RATE * SAMPLE_WIDTH * CHANNELS

Samples = npt.NDArray[np.float32]


class AudioError(ValueError):
    """Audio we cannot use (wrong format, corrupt, too long, no device); the message says why."""


@dataclass(frozen=True)
class AudioFormat:
    """The layout of a PCM stream: width 1 is unsigned 8-bit (the WAV convention), 2 to 4
    signed little-endian; channels are interleaved."""

    rate: int
    """Samples per second per channel."""
    width: int
    """Bytes per sample."""
    channels: int

    def __post_init__(self) -> None:
        _check_int("rate", self.rate, 4000, 192000, " Hz")
        if self.width not in (1, 2, 3, 4) or isinstance(self.width, bool):
            raise AudioError(f"sample width {self.width!r} bytes is not supported (1, 2, 3 or 4)")
        _check_int("channels", self.channels, 1, 8, "")

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample on every channel: every chunk is a whole number of these."""
        return self.width * self.channels

    @property
    def bytes_per_second(self) -> int:
        return self.rate * self.frame_bytes

    def check_whole_frames(self, nbytes: int, what: str) -> None:
        """Refuse a length that would split a frame: the rest would shift every later sample."""
        if nbytes % self.frame_bytes:
            raise AudioError(
                f"{what} of {nbytes} bytes is not a whole number of {self.frame_bytes}-byte "
                f"frames ({self.width} bytes x {self.channels} channels)"
            )


def _check_int(name: str, value: int, low: int, high: int, unit: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise AudioError(f"{name} must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise AudioError(f"{name} {value}{unit} is not supported ({low} to {high})")


STANDARD: Final = AudioFormat(SAMPLE_RATE, SAMPLE_WIDTH, CHANNELS)

# Integer full scale per width, so that every width maps onto the same -1..1 float range
# (24-bit samples are decoded into the top of an int32, hence 2**31).
_FULL_SCALE: Final = {1: 2.0**7, 2: 2.0**15, 3: 2.0**31, 4: 2.0**31}


class Converter:
    """Streaming conversion of one stream from `fmt` to standard PCM.

    One converter per stream: the resampler remembers the last samples of each chunk, which
    is what keeps chunk boundaries from clicking. `flush()` at the end of the stream returns
    the resampler's last samples and makes the converter ready for a new stream.
    """

    def __init__(self, fmt: AudioFormat) -> None:
        self.fmt = fmt
        self._passthrough = fmt == STANDARD
        self._resampler: soxr.ResampleStream | None = None
        if fmt.rate != SAMPLE_RATE:
            self._resampler = soxr.ResampleStream(fmt.rate, SAMPLE_RATE, 1, dtype="float32")

    def convert(self, pcm: bytes) -> bytes:
        """Convert one chunk (a whole number of frames); may return less or more than a chunk's
        worth while the resampler fills or drains."""
        self.fmt.check_whole_frames(len(pcm), "chunk")
        if self._passthrough:
            return bytes(pcm)
        samples = _mix_down(_to_float(pcm, self.fmt.width), self.fmt.channels)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        return _to_standard_bytes(samples)

    def flush(self) -> bytes:
        """The samples the resampler still holds; the converter then starts a new stream."""
        if self._resampler is None:
            return b""
        tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        self._resampler.clear()
        return _to_standard_bytes(tail)


def to_standard(pcm: bytes, fmt: AudioFormat) -> bytes:
    """Convert a whole recording at once."""
    converter = Converter(fmt)
    return converter.convert(pcm) + converter.flush()


def _to_float(pcm: bytes, width: int) -> Samples:
    if width == 1:
        ints: npt.NDArray[np.int32] = np.frombuffer(pcm, np.uint8).astype(np.int32) - 128
    elif width == 3:
        # Put each 3-byte sample in the top of an int32: its sign bit lands where int32's is.
        padded = np.zeros((len(pcm) // 3, 4), np.uint8)
        padded[:, 1:] = np.frombuffer(pcm, np.uint8).reshape(-1, 3)
        ints = padded.view("<i4").ravel()
    else:
        ints = np.frombuffer(pcm, "<i2" if width == 2 else "<i4").astype(np.int32)
    return ints.astype(np.float32) * np.float32(1.0 / _FULL_SCALE[width])


def _mix_down(samples: Samples, channels: int) -> Samples:
    if channels == 1:
        return samples
    mixed: Samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return mixed


def _to_standard_bytes(samples: Samples) -> bytes:
    scaled: Samples = np.clip(np.rint(samples * np.float32(32768.0)), -32768, 32767)
    return scaled.astype("<i2").tobytes()


# WAV (RIFF) container -------------------------------------------------------------------

_WAVE_FORMAT_PCM: Final = 1
_WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE
_FORMAT_NAMES: Final = {
    2: "Microsoft ADPCM",
    3: "IEEE float",
    6: "A-law",
    7: "mu-law",
    0x11: "IMA ADPCM",
    0x55: "MP3",
    0xFFFE: "extensible, without a subformat",
}
_MAX_FMT_BYTES: Final = 4096


@dataclass(frozen=True)
class WavLayout:
    """Where the PCM of a WAV file lies, and its format."""

    fmt: AudioFormat
    data_offset: int
    data_bytes: int

    @property
    def seconds(self) -> float:
        return self.data_bytes / self.fmt.bytes_per_second


def scan_wav(stream: BinaryIO, size: int) -> WavLayout:
    """Read the chunk headers of a WAV file of `size` bytes, up to the start of its data.

    Only integer PCM is accepted; the data chunk must be as long as its header says.
    """
    if size == 0:
        raise AudioError("empty file: no WAV header")
    head = stream.read(12)
    if head[:4] != b"RIFF":
        raise AudioError(f"not a WAV file (starts with {head[:4]!r})")
    if head[8:12] != b"WAVE":
        raise AudioError(f"not a WAV file (RIFF type {head[8:12]!r}, not b'WAVE')")
    fmt: AudioFormat | None = None
    while True:
        chunk = stream.read(8)
        if len(chunk) < 8:
            raise AudioError("truncated WAV: no data chunk")
        chunk_id, chunk_bytes = struct.unpack("<4sI", chunk)
        if chunk_id == b"fmt ":
            fmt = _parse_fmt_chunk(_read_fmt_chunk(stream, chunk_bytes))
        elif chunk_id == b"data":
            return _data_layout(fmt, stream.tell(), chunk_bytes, size)
        else:
            stream.seek(chunk_bytes + chunk_bytes % 2, 1)


def _data_layout(fmt: AudioFormat | None, offset: int, data_bytes: int, size: int) -> WavLayout:
    if fmt is None:
        raise AudioError("corrupt WAV: the data chunk comes before any 'fmt ' chunk")
    present = size - offset
    if data_bytes > present:
        raise AudioError(
            f"truncated WAV: header says {data_bytes} data bytes, file has {max(present, 0)}"
        )
    fmt.check_whole_frames(data_bytes, "WAV data")
    return WavLayout(fmt, offset, data_bytes)


def _read_fmt_chunk(stream: BinaryIO, chunk_bytes: int) -> bytes:
    if chunk_bytes > _MAX_FMT_BYTES:
        raise AudioError(f"corrupt WAV: 'fmt ' chunk of {chunk_bytes} bytes")
    body = stream.read(chunk_bytes)
    if len(body) < chunk_bytes:
        raise AudioError(f"truncated WAV: the 'fmt ' chunk has {len(body)} of {chunk_bytes} bytes")
    stream.seek(chunk_bytes % 2, 1)
    return body


def _parse_fmt_chunk(body: bytes) -> AudioFormat:
    if len(body) < 16:
        raise AudioError(f"corrupt WAV: 'fmt ' chunk is {len(body)} bytes, at least 16 needed")
    tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
        # The real format is the first two bytes of the SubFormat GUID.
        (tag,) = struct.unpack("<H", body[24:26])
    if tag != _WAVE_FORMAT_PCM:
        name = _FORMAT_NAMES.get(tag, "not PCM")
        raise AudioError(
            f"WAV format {tag} ({name}) is not supported, only integer PCM: "
            "convert it with `sox in.wav -e signed-integer out.wav`"
        )
    if bits == 0 or bits % 8:
        raise AudioError(f"{bits}-bit samples are not supported (8, 16, 24 or 32)")
    fmt = AudioFormat(rate, bits // 8, channels)
    if block_align != fmt.frame_bytes:
        raise AudioError(
            f"corrupt WAV: block align {block_align} does not match {bits}-bit x {channels}"
        )
    return fmt
