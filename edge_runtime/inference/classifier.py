"""One pass of a token-classification encoder that gives an intent and word tags together.

The shipped model labels its first token ([CLS]) with the sentence's intent
and each word's first piece with a tag (`O`, or `B-W`/`I-W` for free text);
`training/train_intent.py` says how. Labels come from the `config.json`
exported beside the model (`id2label`), so a retrained model with other labels
needs no code change. Only `tokenizers`, `numpy` and `onnxruntime` are used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from edge_runtime.inference.encoder import model_inputs

OUTSIDE = "O"
TAG_PREFIXES = ("B-", "I-")


class ClassifierError(Exception):
    """The model's files do not describe its labels."""


def labels_of(config_path: Path) -> list[str]:
    config = json.loads(config_path.read_text(encoding="utf-8"))
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise ClassifierError(f"{config_path}: no id2label, so the outputs have no names")
    return [str(id2label[str(i)]) for i in range(len(id2label))]


@dataclass(frozen=True)
class Analysis:
    intents: list[tuple[str, float]]
    """(intent, probability), most likely first."""
    tags: list[str]
    """One tag per input word."""


class IntentTagger:
    """Words to intent probabilities and per-word tags, in one onnxruntime run."""

    def __init__(self, session: ort.InferenceSession, tokenizer: Tokenizer, labels: list[str]):
        self.session = session
        self.tokenizer = tokenizer
        self.labels = labels
        self.tag_ids = [
            i
            for i, label in enumerate(labels)
            if label == OUTSIDE or label.startswith(TAG_PREFIXES)
        ]
        self.intent_ids = [i for i in range(len(labels)) if i not in self.tag_ids]
        self.input_names = {i.name for i in session.get_inputs()}
        outputs = session.get_outputs()[0].shape[-1]
        if isinstance(outputs, int) and outputs != len(labels):
            raise ClassifierError(f"the model has {outputs} outputs but {len(labels)} labels")

    def analyze(self, words: list[str]) -> Analysis:
        encoding = self.tokenizer.encode(words, is_pretokenized=True)
        ids = np.array([encoding.ids], dtype=np.int64)
        feeds = model_inputs(ids, np.ones_like(ids), self.input_names)
        logits = np.asarray(self.session.run(None, feeds)[0][0], dtype=np.float64)
        return Analysis(self._intents(logits[0]), self._tags(logits, encoding.word_ids, len(words)))

    def _intents(self, cls_logits: np.ndarray) -> list[tuple[str, float]]:
        scores = cls_logits[self.intent_ids]
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        order = np.argsort(-probabilities)
        return [(self.labels[self.intent_ids[i]], float(probabilities[i])) for i in order]

    def _tags(self, logits: np.ndarray, word_ids: list[int | None], count: int) -> list[str]:
        tags = [OUTSIDE] * count
        previous = None
        for position, word in enumerate(word_ids):
            if word is not None and word != previous and word < count:
                best = max(self.tag_ids, key=lambda i: logits[position, i])
                tags[word] = self.labels[best]
            previous = word
        return tags
