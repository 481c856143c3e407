"""A causal language model run by onnxruntime-genai, every call bounded.

genai keeps the KV cache, the search and the grammar constraint in C++: at
the sizes a Pi serves, per-token overhead dominates, and a Python decode loop
over plain onnxruntime is several times slower. The Python loop here only
reads each step's logits, to know how sure the model was of the token it
wrote, and checks the bounds: a token budget, stop strings and a deadline.

A constraint (`Guidance`: a Lark grammar, a JSON schema or a regex, through
llguidance inside genai) makes the output valid by construction: at every
step the tokens that would break it are masked before the pick.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime_genai as og

from edge_runtime.inference.catalog import CatalogModel, ModelIntegrityError, verify_model
from edge_runtime.nlu.generator_format import INTENT_SEP, prompt_text

Finish = Literal["eos", "stop", "budget", "deadline"]


class GenerationError(Exception):
    """The generator cannot be loaded or run (not installed, bad folder, bad grammar)."""


@dataclass(frozen=True)
class Guidance:
    """A constraint on the output, in one of genai's kinds."""

    kind: Literal["lark_grammar", "json_schema", "regex"]
    data: str


@dataclass(frozen=True)
class Budget:
    """What bounds one call: new tokens, wall time, and strings that end the answer."""

    max_new_tokens: int = 96
    deadline_s: float | None = None
    """Seconds from the start of the call; the answer so far is returned, marked `deadline`."""
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Generation:
    text: str
    """What the model wrote, up to (not including) a stop string or the end token."""
    tokens: int
    token_logprobs: tuple[float, ...]
    """log p of each written token under the model's own (unconstrained) distribution."""
    finish: Finish
    prefill_ms: float
    decode_ms: float

    @property
    def probability(self) -> float:
        """How likely the model found the whole answer: the product of its token probabilities."""
        return math.exp(sum(self.token_logprobs))

    @property
    def least_sure(self) -> float:
        """The probability of the least likely token written: one doubtful step is enough."""
        return math.exp(min(self.token_logprobs, default=0.0))


class TextGenerator:
    """One genai model folder (`genai_config.json`, the ONNX decoder, the tokenizer)."""

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        if not (folder / "genai_config.json").is_file():
            raise GenerationError(f"{folder}: no genai_config.json (export it with models export)")
        try:
            config = og.Config(str(folder))
            if threads:
                config.overlay(
                    '{"model":{"decoder":{"session_options":'
                    f'{{"intra_op_num_threads":{int(threads)}}}}}}}}}'
                )
            self.model = og.Model(config)
            self.tokenizer = og.Tokenizer(self.model)
        except Exception as exc:  # genai raises plain RuntimeError with ORT's message
            raise GenerationError(f"{folder}: cannot load the generator: {exc}") from exc
        self.folder = folder
        genai_config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
        self.context_length = int(genai_config["model"]["context_length"])
        config = tokenizer_config(folder)
        self.intent_model = config.get("sep_token") == INTENT_SEP
        """edge-runtime's own intent model: reads `<s>sentence<sep>`, writes intent JSON."""
        self.chat_model = not self.intent_model and bool(config.get("chat_template"))
        """An instruct model: prompted through its chat template, can answer in words."""
        self._bos = str(config.get("bos_token") or "<s>")

    def prompt(self, sentence: str, instructions: str | None = None) -> list[int]:
        """Token ids of `sentence` as this model expects it: `<s>sentence<sep>` for an intent
        model, the chat template (with `instructions` as the system turn) for an instruct
        model, the sentence itself for any other."""
        if self.intent_model:
            return self.encode(f"{self._bos}{prompt_text(sentence)}{INTENT_SEP}")
        if self.chat_model:
            turns = [{"role": "user", "content": sentence}]
            if instructions:
                turns.insert(0, {"role": "system", "content": instructions})
            return self.encode(self.tokenizer.apply_chat_template(json.dumps(turns)))
        return self.encode(sentence)

    @classmethod
    def from_catalog(
        cls, model: CatalogModel, directory: Path, threads: int | None = None
    ) -> TextGenerator:
        """Load a catalog model after every file matched its sha256."""
        try:
            paths = verify_model(model, directory)
        except ModelIntegrityError as exc:
            raise GenerationError(str(exc)) from exc
        return cls(paths[0].parent, threads)

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer.encode(text)]

    def decode(self, tokens: list[int]) -> str:
        return str(self.tokenizer.decode(np.asarray(tokens, dtype=np.int32)))

    def generate(
        self,
        prompt: list[int],
        budget: Budget,
        guidance: Guidance | None = None,
        sample_seed: int | None = None,
        top_p: float = 1.0,
    ) -> Generation:
        """Greedy decoding from `prompt` (token ids) within `budget`, under `guidance`;
        with `sample_seed`, sampling instead, from the tokens that make up `top_p` of the
        probability (1.0: the whole distribution, which the tests use to prove the
        constraint holds whatever the model writes)."""
        started = time.perf_counter()
        params = og.GeneratorParams(self.model)
        if len(prompt) >= self.context_length:
            raise GenerationError(
                f"the prompt has {len(prompt)} tokens; the model reads at most "
                f"{self.context_length - 1}"
            )
        longest = min(len(prompt) + budget.max_new_tokens, self.context_length)
        search: dict[str, Any] = {"max_length": longest}
        if sample_seed is None:
            search["do_sample"] = False
        else:
            search.update(do_sample=True, top_k=0, top_p=top_p, random_seed=sample_seed)
        params.set_search_options(**search)
        if guidance is not None:
            try:
                params.set_guidance(guidance.kind, guidance.data)
            except Exception as exc:
                raise GenerationError(f"the {guidance.kind} was refused: {exc}") from exc
        generator = og.Generator(self.model, params)
        generator.append_tokens(np.asarray(prompt, dtype=np.int32))
        prefilled = time.perf_counter()
        written: list[int] = []
        logprobs: list[float] = []
        finish: Finish = "budget"
        stream = self.tokenizer.create_stream()
        text = ""
        while not generator.is_done():
            if budget.deadline_s is not None and time.perf_counter() - started > budget.deadline_s:
                finish = "deadline"
                break
            logits = np.asarray(generator.get_logits(), dtype=np.float32).reshape(-1)
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            if token in self._eos:
                finish = "eos"
                break
            logprobs.append(_log_softmax_at(logits, token))
            written.append(token)
            text += stream.decode(token)
            cut = _stop_at(text, budget.stop)
            if cut is not None:
                text, finish = text[:cut], "stop"
                break
        done = time.perf_counter()
        if finish == "budget" and len(prompt) + len(written) < longest:
            finish = "eos"  # genai ended it: the end token, or a grammar that is complete
        return Generation(
            text,
            len(written),
            tuple(logprobs),
            finish,
            (prefilled - started) * 1000,
            (done - prefilled) * 1000,
        )

    def first_logits(self, prompt: list[int]) -> np.ndarray:
        """The distribution (as logits) of the token after `prompt`."""
        params = og.GeneratorParams(self.model)
        params.set_search_options(max_length=len(prompt) + 1)
        generator = og.Generator(self.model, params)
        generator.append_tokens(np.asarray(prompt, dtype=np.int32))
        return np.asarray(generator.get_logits(), dtype=np.float32).reshape(-1)

    def first_logits_gap(self, other: TextGenerator, prompt: list[int]) -> float:
        """Largest difference between this model's next-token logits and `other`'s."""
        return float(np.max(np.abs(self.first_logits(prompt) - other.first_logits(prompt))))

    @property
    def _eos(self) -> frozenset[int]:
        return frozenset(int(t) for t in self.tokenizer.eos_token_ids)


def tokenizer_config(folder: Path) -> dict[str, Any]:
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return config if isinstance(config, dict) else {}


def _log_softmax_at(logits: np.ndarray, token: int) -> float:
    top = float(logits.max())
    return float(logits[token] - top - math.log(float(np.exp(logits - top).sum())))


def _stop_at(text: str, stops: tuple[str, ...]) -> int | None:
    found = [text.find(stop) for stop in stops if stop and stop in text]
    return min(found) if found else None
