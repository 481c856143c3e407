"""The encoder tier's example bank: template sentences about placeholder things, embedded once.

Every example is a random expansion of a Home Assistant template in which the
entity, area and floor are placeholders ("turn off the reading light in the
atrium"), so the bank does not depend on one home: it is built once per
language, template version and encoder model, and cached on disk under a key
that hashes exactly those inputs. Building takes seconds on a PC and a couple
of minutes on a Pi 4, once; later starts load it in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
from hassil import Intents, RangeSlotList, TextSlotList

from edge_runtime.inference.encoder import Matrix, SentenceEncoder
from edge_runtime.nlu.lexicon import LanguageResources
from edge_runtime.nlu.templates import TemplateSampler, fill_marks

log = logging.getLogger(__name__)

BANK_FORMAT = 3
"""Bump when the way examples are drawn changes, so old caches are not reused."""
SEED = 20261124
PER_TEMPLATE = 12
BATCH = 64
PARAPHRASES_FILE = "{language}_paraphrases.yaml"


@dataclass(frozen=True)
class Example:
    """One bank entry: the intent and the template text with its slot marks."""

    intent: str
    marked: str
    lists: tuple[str, ...]
    """Template list of each slot mark (`name`, `area`, `brightness` …), in mark order."""
    fills: tuple[str, ...]
    """The placeholder text of each mark."""


@dataclass
class ExampleBank:
    examples: list[Example]
    vectors: Matrix
    """One L2-normalised row per example."""

    def nearest(self, vector: Matrix, k: int) -> list[tuple[float, Example]]:
        # einsum stays on this thread: BLAS gemv spins up threads that fight onnxruntime's.
        scores = np.einsum("ij,j->i", self.vectors, vector)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        order = top[np.argsort(-scores[top])]
        return [(float(scores[i]), self.examples[i]) for i in order]


def placeholder_lists(res: LanguageResources) -> dict[str, TextSlotList]:
    """Slot lists with one placeholder entity per domain, one area, one floor."""
    names = [
        (text, text, {"domain": key.split(".")[0]})
        for key, text in res.placeholders.items()
        if key not in ("area", "floor")
    ]
    return {
        "name": TextSlotList.from_tuples(names, allow_template=False, name="name"),
        "area": TextSlotList.from_strings([res.placeholders["area"]], False, name="area"),
        "floor": TextSlotList.from_strings([res.placeholders["floor"]], False, name="floor"),
    }


def draw_examples(intents: Intents, res: LanguageResources) -> list[Example]:
    """Distinct examples from the templates (HA's and our own paraphrases), free text left out."""
    wildcard_lists = {
        name
        for name, slot_list in intents.slot_lists.items()
        if not isinstance(slot_list, RangeSlotList | TextSlotList)
    }
    sampler = TemplateSampler(
        intents, placeholder_lists(res), random.Random(SEED), cycled_lists=frozenset({"name"})
    )
    seen: set[tuple[str, str]] = set()
    examples = []
    for sample in sampler.samples(PER_TEMPLATE):
        if any(f.list_name in wildcard_lists for f in sample.filled):
            continue  # free text (list items, messages) cannot be re-bound from a lexicon
        key = (sample.intent, sample.marked)
        if key not in seen:
            seen.add(key)
            examples.append(
                Example(
                    sample.intent,
                    sample.marked,
                    tuple(f.list_name for f in sample.filled),
                    tuple(f.text for f in sample.filled),
                )
            )
    return examples


def cache_key(language: str, model_sha256: str, res: LanguageResources, extra_text: str) -> str:
    parts = {
        "format": BANK_FORMAT,
        "language": language,
        "model": model_sha256,
        "intents": metadata.version("home-assistant-intents"),
        "hassil": metadata.version("hassil"),
        "placeholders": res.placeholders,
        "paraphrases": hashlib.sha256(extra_text.encode()).hexdigest(),
        "seed": SEED,
        "per_template": PER_TEMPLATE,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def paraphrase_templates(language: str) -> str:
    """Our own extra templates for a language (verbs people use that HA's templates lack)."""
    path = resources.files("edge_runtime.nlu.lang").joinpath(
        PARAPHRASES_FILE.format(language=language.split("-", maxsplit=1)[0])
    )
    return path.read_text("utf-8") if path.is_file() else ""


def load_or_build(
    path: Path, draw: Callable[[], list[Example]], encoder: SentenceEncoder
) -> ExampleBank:
    """The cached bank at `path`, or a new one drawn and embedded now and saved there."""
    if path.exists():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("example bank %s is unreadable (%s); rebuilding it", path, exc)
    return _build(path, draw(), encoder)


def _load(path: Path) -> ExampleBank:
    with np.load(path) as cached:
        vectors: npt.NDArray[np.float32] = cached["vectors"].astype(np.float32)
        rows = json.loads(bytes(cached["examples"]).decode("utf-8"))
    examples = [Example(r[0], r[1], tuple(r[2]), tuple(r[3])) for r in rows]
    if len(examples) != len(vectors):
        raise ValueError(f"{len(examples)} examples but {len(vectors)} vectors")
    return ExampleBank(examples, vectors)


def _build(path: Path, examples: list[Example], encoder: SentenceEncoder) -> ExampleBank:
    started = time.monotonic()
    log.info("embedding %d template examples for the encoder tier (once; cached)", len(examples))
    texts = [fill_marks(e.marked, e.fills) for e in examples]
    batches = []
    for start in range(0, len(texts), BATCH):
        batches.append(encoder.embed(texts[start : start + BATCH]))
        if start // BATCH % 40 == 0:
            log.info("  %d/%d examples embedded", min(start + BATCH, len(texts)), len(texts))
    vectors = np.concatenate(batches).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    rows = [[e.intent, e.marked, e.lists, e.fills] for e in examples]
    encoded = np.frombuffer(json.dumps(rows).encode("utf-8"), dtype=np.uint8)
    np.savez(temporary, vectors=vectors.astype(np.float16), examples=encoded)
    temporary.replace(path)
    log.info("example bank ready in %.1f s: %s", time.monotonic() - started, path)
    return ExampleBank(examples, vectors.astype(np.float16).astype(np.float32))
