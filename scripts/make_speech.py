"""Regenerate the course's spoken-word clips (tlcourse/assets/speech/) with espeak-ng.

Needs ``espeak-ng`` on the PATH (Debian/Ubuntu: ``apt-get install -y espeak-ng``) and scipy;
loading the shipped clips needs neither. Deterministic for a given seed and espeak-ng version
(the clips shipped with the course were made with espeak-ng 1.51).

Each clip is one word, 16 kHz mono, exactly 1 s: espeak-ng speaks the word with a random
English voice (8 accents) x voice variant (~95), speed and pitch; the audio is resampled from
22.05 kHz to 16 kHz, trimmed of silence, placed at a random offset and scaled to a random peak.
A "speaker" is one (accent, variant) pair; splits are made by speaker (as in Speech Commands),
so no speaker of the val or test split is heard in training.

All clips of a word are stored back to back in one Ogg/Opus file (``clips/WORD.opus``, clip
``i`` = samples ``[16000 i, 16000 (i + 1))``) with ``manifest.json`` describing each clip.

    python scripts/make_speech.py            # writes tlcourse/assets/speech/
    python scripts/make_speech.py --out /tmp/speech --per-word 10
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
# Target keywords: the ten command words of Speech Commands (different words from the source).
TARGET_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# Source words to pretrain on: the other Speech Commands words plus five of our own.
SOURCE_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "backward", "forward", "follow", "learn", "visual", "apple", "window", "music", "yellow", "table",
)  # fmt: skip
ACCENTS = (
    "en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
    "en-029", "en-us-nyc",
)  # fmt: skip
VARIANTS = (  # noqa: SIM905 - easier to read as one string
    "Alex Alicia Andrea Andy Annie AnxiousAndy Demonic Denis Diogo Gene Gene2 Henrique Hugo Jacky "
    "Lee Marco Mario Michael Mike Nguyen RicishayMax RicishayMax2 RicishayMax3 Storm Tweaky "
    "UniRobot adam anika anikaRobot announcer antonio aunty belinda benjamin boris caleb croak "
    "david ed edward edward2 f1 f2 f3 f4 f5 fast grandma grandpa gustave iven iven2 iven3 iven4 "
    "john kaukovalta klatt klatt2 klatt3 klatt4 klatt5 klatt6 linda m1 m2 m3 m4 m5 m6 m7 m8 "
    "marcelo max michel miguel norbert pablo paul pedro quincy rob robert robosoft robosoft2 "
    "robosoft3 robosoft4 robosoft5 robosoft6 robosoft7 robosoft8 sandro shelby steph steph2 "
    "steph3 travis victor whisper whisperf zac"
).split()
PERCENT = {"val": 10, "test": 25}


def speaker_id(accent: str, variant: str) -> str:
    """A stable 8-hex-digit speaker id for one (accent, variant) voice, like Speech Commands'."""
    return hashlib.sha1(f"{accent}+{variant}".encode()).hexdigest()[:8]


def split_of(speaker: str) -> str:
    """``train``/``val``/``test`` from the speaker id (Speech Commands' hashing idea)."""
    percent = int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % 100
    if percent < PERCENT["val"]:
        return "val"
    return "test" if percent < PERCENT["val"] + PERCENT["test"] else "train"


def speak(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's rendering of ``word``, resampled to 16 kHz float32 in [-1, 1]."""
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word]
    wav = subprocess.run(cmd, check=True, capture_output=True).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return resample_poly(audio, SAMPLE_RATE, rate).astype(np.float32)


def place(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Trim silence, put the word at a random offset in a 1 s clip, scale to a random peak."""
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
    if loud.size == 0:
        return None
    word = audio[loud[0] : loud[-1] + 1]
    if word.size > 0.95 * SAMPLE_RATE:
        return None
    clip = np.zeros(SAMPLE_RATE, dtype=np.float32)
    start = int(rng.integers(0, SAMPLE_RATE - word.size + 1))
    clip[start : start + word.size] = word / np.abs(word).max() * rng.uniform(0.3, 0.9)
    return clip


def make_word(word: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """``n`` clips of ``word``: audio ``(n * 16000,)`` and one manifest row per clip."""
    clips, rows, seen = [], [], {}
    while len(clips) < n:
        accent, variant = ACCENTS[rng.integers(len(ACCENTS))], VARIANTS[rng.integers(len(VARIANTS))]
        speed, pitch = int(rng.integers(110, 231)), int(rng.integers(10, 91))
        clip = place(speak(word, f"{accent}+{variant}", speed, pitch), rng)
        if clip is None:
            continue
        speaker = speaker_id(accent, variant)
        k = seen[speaker] = seen.get(speaker, -1) + 1
        clips.append(clip)
        rows.append(dict(file=f"{speaker}_nohash_{k}.wav", speaker=speaker, accent=accent,
                         variant=variant, speed=speed, pitch=pitch, split=split_of(speaker)))  # fmt: skip
    return np.concatenate(clips), rows


def write_opus(path: Path, audio: np.ndarray) -> None:
    """Write 16 kHz mono audio as Ogg/Opus (lossy, about 18 kbit/s), atomically."""
    tmp = path.with_suffix(".tmp")
    sf.write(tmp, audio, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=0.9)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "tlcourse/assets/speech"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--per-word", type=int, default=None, help="clips per word (default 120 source / 80 target)"
    )
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        raise SystemExit(
            "espeak-ng not found: install it (Debian/Ubuntu: `apt-get install -y espeak-ng`)."
        )
    args.out.mkdir(parents=True, exist_ok=True)
    start, tmp = time.time(), Path(tempfile.mkdtemp(dir=args.out, prefix=".tmp-"))
    (tmp / "clips").mkdir()
    manifest = {"sample_rate": SAMPLE_RATE, "clip_samples": SAMPLE_RATE, "seed": args.seed,
                "source_words": list(SOURCE_WORDS), "target_words": list(TARGET_WORDS), "clips": {}}  # fmt: skip
    for i, word in enumerate(SOURCE_WORDS + TARGET_WORDS):
        n = args.per_word or (80 if word in TARGET_WORDS else 120)
        audio, rows = make_word(word, n, np.random.default_rng([args.seed, i]))
        write_opus(tmp / "clips" / f"{word}.opus", audio)
        manifest["clips"][word] = rows
        print(f"{word:10s} {n} clips  {time.time() - start:6.1f} s", flush=True)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=0) + "\n")
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.out / "clips", ignore_errors=True)
    os.replace(tmp / "clips", args.out / "clips")
    os.replace(tmp / "manifest.json", args.out / "manifest.json")
    tmp.rmdir()
    print(f"wrote {args.out} in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
