"""Sentence embeddings from an ONNX encoder (MiniLM-class): tokenize, run, mean-pool, normalise.

Only `tokenizers`, `numpy` and `onnxruntime` are needed, so a Raspberry Pi runs
it without torch. Input buffers are allocated per batch, not per token.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

MAX_TOKENS = 64
"""Commands are short; 64 word pieces covers every one and bounds the cost."""

Matrix = npt.NDArray[np.float32]


def load_tokenizer(path: Path, max_tokens: int = MAX_TOKENS) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_tokens)
    pad_token = next(
        (t for t in ("[PAD]", "<pad>") if tokenizer.token_to_id(t) is not None), "[PAD]"
    )
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad_token) or 0, pad_token=pad_token)
    return tokenizer


class SentenceEncoder:
    """Texts to L2-normalised mean-pooled embeddings, one row per text."""

    def __init__(self, session: ort.InferenceSession, tokenizer: Tokenizer) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.input_names = {i.name for i in session.get_inputs()}

    @property
    def dimension(self) -> int:
        shape = self.session.get_outputs()[0].shape
        return int(shape[-1])

    def feeds(self, texts: list[str]) -> dict[str, npt.NDArray[np.int64]]:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return model_inputs(ids, mask, self.input_names)

    def embed(self, texts: list[str]) -> Matrix:
        feeds = self.feeds(texts)
        hidden = self.session.run(None, feeds)[0]
        return mean_pool(np.asarray(hidden, dtype=np.float32), feeds["attention_mask"])


def model_inputs(
    ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64], input_names: set[str]
) -> dict[str, npt.NDArray[np.int64]]:
    """The feeds of a BERT-family graph; `token_type_ids` only where the graph takes it."""
    feeds = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in input_names:
        feeds["token_type_ids"] = np.zeros_like(ids)
    return feeds


def mean_pool(hidden: Matrix, mask: npt.NDArray[np.int64]) -> Matrix:
    """Average the token vectors a sentence really has (padding excluded), then normalise."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    normalised: Matrix = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
    return normalised
