"""Sentence classification with an ONNX encoder and its head (e.g. intents from MiniLM).

The labels come from the `config.json` exported beside the model (`id2label`),
so a retrained model with other labels needs no code change.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from edge_runtime.inference.encoder import SentenceEncoder


class ClassifierError(Exception):
    """The classifier's files do not describe its labels."""


def labels_of(config_path: Path) -> list[str]:
    config = json.loads(config_path.read_text(encoding="utf-8"))
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise ClassifierError(f"{config_path}: no id2label, so the outputs have no names")
    return [str(id2label[str(i)]) for i in range(len(id2label))]


class TextClassifier:
    """Text to a probability per label (softmax of the head's logits)."""

    def __init__(self, session: ort.InferenceSession, tokenizer: Tokenizer, labels: list[str]):
        self.encoder = SentenceEncoder(session, tokenizer)
        self.labels = labels
        outputs = session.get_outputs()[0].shape[-1]
        if isinstance(outputs, int) and outputs != len(labels):
            raise ClassifierError(f"the model has {outputs} outputs but {len(labels)} labels")

    def probabilities(self, text: str) -> list[tuple[str, float]]:
        """(label, probability), most likely first."""
        feeds = self.encoder.feeds([text])
        logits = np.asarray(self.encoder.session.run(None, feeds)[0][0], dtype=np.float64)
        exp = np.exp(logits - logits.max())
        probs = exp / exp.sum()
        order = np.argsort(-probs)
        return [(self.labels[i], float(probs[i])) for i in order]
