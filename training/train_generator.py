"""Train the generator tier's model from scratch: a small Llama-style decoder, utterance -> intents.

No pretrained causal LM can be downloaded here, and none is needed for this
job: the model maps a command to a compact JSON list of Home Assistant
intents, copying names from the sentence, so a few million parameters do.
Input: the JSONL of `training.generator_data` (`{"text", "intents": [...]}`).
Each example becomes one sequence:

    <s>turn off the den lamp and lock the back door<sep>[{"intent":"HassTurnOff",...},...]</s>

and the loss counts only what follows `<sep>`. The tokenizer is a byte-level
BPE learnt from the same data (so every string can be encoded, names never
seen included). Output: a Hugging Face folder (weights, config, tokenizer,
`training.json` with the run's settings and figures) that `edge-runtime models
export DIR --task text-generation` turns into the ONNX the tier loads.

    python -m training.train_generator --data build/generator.jsonl --out build/generator \
        --size small --seed 1 --max-minutes 9

`--size tiny` trains in seconds on a CPU (the tests use it); `small` (about
5M parameters) and `base` (about 15M) are for the GPU (`device` tool), where a
run is kept under ten minutes. This module needs only torch, transformers and
tokenizers, so it runs on the GPU machine without the rest of edge-runtime.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from edge_runtime.nlu.generator_format import prompt_text, target_json

BOS, EOS, SEP, PAD = "<s>", "</s>", "<sep>", "<pad>"
SPECIAL_TOKENS = [PAD, BOS, EOS, SEP]
IGNORE = -100
"""Label of a position the loss skips (the utterance and the padding)."""


@dataclass(frozen=True)
class Size:
    """A model shape and the training settings that suit it."""

    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    max_tokens: int
    batch: int
    lr: float


SIZES = {
    "tiny": Size(512, 64, 2, 4, 2, 128, 160, 16, 3e-3),
    "small": Size(2048, 256, 6, 8, 4, 768, 192, 256, 1.5e-3),
    "base": Size(4096, 384, 8, 8, 4, 1152, 192, 256, 1e-3),
}


@dataclass(frozen=True)
class Example:
    text: str
    target: str
    """The compact JSON the model must write."""


def load_examples(path: Path) -> list[Example]:
    examples = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            row = json.loads(line)
            if not isinstance(row.get("text"), str) or not isinstance(row.get("intents"), list):
                raise ValueError(f"{path}:{number}: a row needs 'text' and 'intents'")
            target = row.get("target") or target_json(row["intents"])
            examples.append(Example(prompt_text(row["text"]), target))
    if not examples:
        raise ValueError(f"{path} holds no examples")
    return examples


def train_tokenizer(examples: Sequence[Example], vocab: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE over utterances and targets: any text encodes, unseen names included."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator((s for e in examples for s in (e.text, e.target)), trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD, sep_token=SEP
    )


def encode(
    tokenizer: PreTrainedTokenizerFast, example: Example, max_tokens: int
) -> tuple[list[int], list[int]] | None:
    """Token ids and labels (only the target counts); None when it does not fit."""
    prompt = tokenizer.encode(BOS + example.text + SEP, add_special_tokens=False)
    answer = tokenizer.encode(example.target + EOS, add_special_tokens=False)
    if len(prompt) + len(answer) > max_tokens:
        return None
    return prompt + answer, [IGNORE] * len(prompt) + answer


def batches(
    encoded: Sequence[tuple[list[int], list[int]]], size: int, pad_id: int, rng: random.Random
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Shuffled batches, padded on the right to the longest row of each."""
    order = list(range(len(encoded)))
    rng.shuffle(order)
    for start in range(0, len(order), size):
        rows = [encoded[i] for i in order[start : start + size]]
        width = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), width), pad_id)
        labels = torch.full((len(rows), width), IGNORE)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, (tokens, targets) in enumerate(rows):
            ids[row, : len(tokens)] = torch.tensor(tokens)
            labels[row, : len(targets)] = torch.tensor(targets)
            mask[row, : len(tokens)] = 1
        yield ids, labels, mask


def build_model(size: Size, tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    config = LlamaConfig(  # type: ignore[no-untyped-call]
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        intermediate_size=size.intermediate,
        max_position_embeddings=size.max_tokens,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)  # type: ignore[no-untyped-call]


@dataclass
class Progress:
    step: int = 0
    examples: int = 0
    first_loss: float = math.nan
    last_loss: float = math.nan

    def record(self, loss: float, examples: int) -> None:
        self.step += 1
        self.examples += examples
        self.last_loss = loss
        if self.step == 1:
            self.first_loss = loss

    def __str__(self) -> str:
        return f"loss {self.last_loss:.4f}, {self.examples} examples"


def train(
    model: LlamaForCausalLM,
    encoded: Sequence[tuple[list[int], list[int]]],
    size: Size,
    pad_id: int,
    seed: int,
    max_steps: int,
    max_minutes: float,
) -> Progress:
    """AdamW with warm-up and cosine decay until `max_steps` or the time is up.

    The decay follows whichever is further along, the steps or the clock, so a run the clock
    stops (a slower GPU, a bigger model) still ends at a low learning rate instead of being
    cut off at a high one."""
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=size.lr, weight_decay=0.01)
    warmup = max(1, min(200, max_steps // 20))
    rng, progress, started = random.Random(seed), Progress(), time.monotonic()
    model.train()
    while progress.step < max_steps:
        for ids, labels, mask in batches(encoded, size.batch, pad_id, rng):
            elapsed = time.monotonic() - started
            done = max(progress.step / max_steps, elapsed / (max_minutes * 60))
            for group in optimizer.param_groups:
                group["lr"] = size.lr * warmup_cosine(progress.step, done, warmup)
            loss = step_loss(model, ids.to(device), labels.to(device), mask.to(device))
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            progress.record(float(loss.detach()), len(ids))
            if progress.step % 50 == 0:
                print(
                    f"step {progress.step}/{max_steps} {progress} ({elapsed:.0f} s)",
                    file=sys.stderr,
                )
            if progress.step >= max_steps or done >= 1.0:
                return progress
    return progress


def warmup_cosine(step: int, done: float, warmup: int) -> float:
    """The learning rate's factor: linear warm-up over `warmup` steps, then a cosine from 1
    to 0 as the run's share `done` goes from 0 to 1."""
    return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))


def step_loss(
    model: LlamaForCausalLM, ids: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """The loss of one batch, in bfloat16 on a GPU."""
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=ids.device.type == "cuda"):
        loss: torch.Tensor = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    return loss


@torch.no_grad()
def exact_match(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    examples: Sequence[Example],
    max_new: int,
) -> float:
    """Share of examples whose greedy output is exactly the target (no constraint applied)."""
    model.eval()  # type: ignore[no-untyped-call]
    device = next(model.parameters()).device
    right = 0
    for example in examples:
        prompt = tokenizer.encode(
            BOS + example.text + SEP, add_special_tokens=False, return_tensors="pt"
        )
        output = model.generate(
            prompt.to(device),
            max_new_tokens=max_new,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        said = tokenizer.decode(output[0, prompt.shape[1] :], skip_special_tokens=True)
        right += said.strip() == example.target
    return right / max(1, len(examples))


def portable_tokenizer_config(folder: Path) -> None:
    """Name the tokenizer class every transformers version knows: transformers 5 writes
    `TokenizersBackend`, which 4.x (this project's pin) cannot load."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(args: argparse.Namespace) -> dict[str, Any]:
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    size = SIZES[args.size]
    examples = load_examples(args.data)
    random.Random(args.seed).shuffle(examples)
    held_out = examples[: args.eval_examples]
    tokenizer = train_tokenizer(examples, size.vocab)
    encoded = [
        e for e in (encode(tokenizer, x, size.max_tokens) for x in examples[len(held_out) :]) if e
    ]
    if not encoded:
        raise ValueError("no example fits the model's context")
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    model = build_model(size, tokenizer)
    model.to(device)  # type: ignore[arg-type]
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"{parameters / 1e6:.2f}M parameters, {len(encoded)} examples, on {device}", file=sys.stderr
    )
    started = time.monotonic()
    progress = train(
        model, encoded, size, int(tokenizer.pad_token_id), args.seed, args.steps, args.max_minutes
    )
    train_s = time.monotonic() - started
    match = exact_match(model, tokenizer, held_out, size.max_tokens)
    args.out.mkdir(parents=True, exist_ok=True)
    model.to(torch.device("cpu"))  # type: ignore[arg-type]
    (model.half() if args.half else model).save_pretrained(args.out)  # type: ignore[no-untyped-call]
    tokenizer.save_pretrained(args.out)
    portable_tokenizer_config(args.out)
    report = {
        "size": args.size,
        "shape": asdict(size),
        "parameters": parameters,
        "seed": args.seed,
        "data": str(args.data),
        "data_sha256": file_digest(args.data),
        "examples": len(encoded),
        "held_out": len(held_out),
        "steps": progress.step,
        "examples_seen": progress.examples,
        "first_loss": progress.first_loss,
        "last_loss": progress.last_loss,
        "held_out_exact_match": match,
        "train_s": round(train_s, 1),
        "device": str(device),
        "torch": torch.__version__,
    }
    (args.out / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--data", type=Path, required=True, help="JSONL of training.generator_data")
    parser.add_argument("--out", type=Path, required=True, help="the Hugging Face folder to write")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4000, help="optimizer steps at most")
    parser.add_argument("--max-minutes", type=float, default=9.0, help="stop training after this")
    parser.add_argument(
        "--eval-examples", type=int, default=200, help="held out, greedy exact match"
    )
    parser.add_argument("--cpu", action="store_true", help="even where CUDA is available")
    parser.add_argument("--half", action="store_true", help="save the weights as float16")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    report = run(parse_args(argv))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
