"""Real audio for tests: speech from espeak-ng, noise mixed in with sox.

No test mocks audio: speech is synthesized, noise is generated and mixed by sox, and the
levels are measured with numpy so that a requested signal-to-noise ratio is what the file
has. espeak-ng and sox are required (script/test installs them); a missing tool fails the
test with the command that installs it rather than skipping it.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest


def speak(text: str, path: Path, voice: str = "en-us", speed: int = 160) -> Path:
    """Synthesize `text` to a WAV file (22050 Hz mono 16-bit, as espeak-ng writes it)."""
    _run("espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text)
    return path


def add_noise(src: Path, dst: Path, snr_db: float) -> Path:
    """Mix white noise into `src` at `snr_db` (whole-file RMS of the signal against the noise's).

    The noise has the rate, channels and length of `src`; `dst` has the format of `src`. It is
    repeatable (sox -R): the same file gets the same noise, so a test's outcome does not depend
    on the draw. How often speech in noise is heard right or wrong is a rate, measured over
    many utterances by benchmarks/voice.py.
    """
    signal_rms = _rms(src)
    if signal_rms == 0.0:
        raise ValueError(f"{src} is silent: no signal-to-noise ratio can be set")
    rate, channels, length = (_run("soxi", flag, str(src)).strip() for flag in ("-r", "-c", "-s"))
    noise = dst.with_name(f"{dst.stem}.noise-{uuid.uuid4().hex[:8]}.wav")
    try:
        synth = ("synth", f"{length}s", "whitenoise", "vol", "0.25")
        # The rate goes before -n: synth counts samples at its input's rate.
        sox("-R", "-r", rate, "-c", channels, "-n", "-b", "16", noise, *synth)
        gain = signal_rms / 10 ** (snr_db / 20) / _rms(noise)
        sox("-D", "-m", "-v", "1", src, "-v", f"{gain:.6f}", noise, dst)
    finally:
        noise.unlink(missing_ok=True)
    return dst


def sox(*args: str | Path) -> bytes:
    """Run sox (its standard output, for `-t raw -`); a failure shows sox's own message."""
    return _run_bytes("sox", *map(str, args))


def samples(path: Path) -> npt.NDArray[np.float64]:
    """The samples of any file sox reads, as floats in -1..1 (channels interleaved)."""
    raw = sox("-D", path, "-t", "raw", "-e", "signed-integer", "-b", "16", "-")
    return np.frombuffer(raw, "<i2").astype(np.float64) / 32768


def _rms(path: Path) -> float:
    return float(np.sqrt(np.mean(np.square(samples(path)))))


def _run(*command: str) -> str:
    return _run_bytes(*command).decode()


def _run_bytes(*command: str) -> bytes:
    if shutil.which(command[0]) is None:
        package = "sox" if command[0].startswith("sox") else command[0]
        pytest.fail(f"{command[0]} is not installed: apt-get install {package}")
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout
