"""Export a causal language model for onnxruntime-genai: ONNX with past key values, quantized,
plus the `genai_config.json` that genai loads the folder with.

optimum writes the decoder graph (`text-generation-with-past`: inputs
`input_ids`, `attention_mask`, `position_ids`, `past_key_values.N.key/value`;
outputs `logits`, `present.N.key/value`). genai needs to be told those names
and the shape of the model; it cannot share the past and present buffers of
such a graph (`past_present_share_buffer: false`). Quantization is
weight-only on the MatMuls, int4 or int8, through onnxruntime's
`MatMulNBitsQuantizer` (symmetric, one scale per block of weights): the kernels
genai runs fastest on a CPU. Used by `export.export`; needs the `export` extra.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

GenerationQuantize = Literal["int4", "int8", "none"]
ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "mistral": "mistral", "phi3": "phi3"}
"""Hugging Face model_type -> genai's model type, for the architectures genai decodes."""
BLOCK_SIZES = (16, 32, 64, 128, 256)
DEFAULT_BLOCK = 128
"""Weights per scale, onnxruntime's own default. Decode of a random 110M Llama on the 2-core
development machine, median of 10 (tokens/s): int4 150 at blocks of 32, 205 at 128, 240 at
256; int8 123 at 32, 164 at 128, where the dynamic per-channel int8 (MatMulInteger) decoded
131. Smaller blocks follow the weights more closely; the shipped 5.8M generator keeps 32."""
ACCURACY_LEVEL = 4
"""MatMulNBits computes with int8 activations: decode of a 110M Llama 86 -> 114 tokens/s here
(prefill slower, 749 -> 643 tokens/s); level 0 dequantizes to fp32 and is slower than int8."""
GENAI_CONFIG = "genai_config.json"


class GenaiExportError(Exception):
    """The model cannot be run by onnxruntime-genai (architecture, missing inputs)."""


def genai_config(hf_config: dict[str, Any], inputs: set[str], filename: str) -> dict[str, Any]:
    """genai's description of an optimum-exported decoder (`hf_config` is its config.json)."""
    model_type = str(hf_config.get("model_type"))
    if model_type not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise GenaiExportError(f"architecture {model_type!r} is not supported (known: {known})")
    heads = int(hf_config["num_attention_heads"])
    hidden = int(hf_config["hidden_size"])
    names = {
        "input_ids": "input_ids",
        "attention_mask": "attention_mask",
        "past_key_names": "past_key_values.%d.key",
        "past_value_names": "past_key_values.%d.value",
    }
    if "position_ids" in inputs:
        names["position_ids"] = "position_ids"
    missing = {"input_ids", "attention_mask", "past_key_values.0.key"} - inputs
    if missing:
        raise GenaiExportError(f"the exported graph lacks inputs {sorted(missing)}")
    context = int(hf_config.get("max_position_embeddings", 2048))
    eos = hf_config.get("eos_token_id")
    return {
        "model": {
            "bos_token_id": hf_config.get("bos_token_id"),
            "context_length": context,
            "decoder": {
                "session_options": {"log_id": "edge-runtime", "provider_options": []},
                "filename": filename,
                "head_size": int(hf_config.get("head_dim") or hidden // heads),
                "hidden_size": hidden,
                "inputs": names,
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
                "num_attention_heads": heads,
                "num_hidden_layers": int(hf_config["num_hidden_layers"]),
                "num_key_value_heads": int(hf_config.get("num_key_value_heads") or heads),
            },
            "eos_token_id": eos,
            "pad_token_id": hf_config.get("pad_token_id", eos if isinstance(eos, int) else 0),
            "type": ARCHITECTURES[model_type],
            "vocab_size": int(hf_config["vocab_size"]),
        },
        "search": {
            "do_sample": False,
            "max_length": context,
            "min_length": 0,
            "num_beams": 1,
            "num_return_sequences": 1,
            "past_present_share_buffer": False,
            "repetition_penalty": 1.0,
            "temperature": 1.0,
            "top_k": 1,
            "top_p": 1.0,
        },
    }


def graph_inputs(path: Path) -> set[str]:
    import onnx

    return {i.name for i in onnx.load(str(path), load_external_data=False).graph.input}


def quantize_decoder(
    fp32: Path, mode: GenerationQuantize, out: Path, block_size: int = DEFAULT_BLOCK
) -> Path:
    """Weight-only quantization of the decoder's MatMuls; the graph's interface is unchanged."""
    if mode not in ("int4", "int8"):
        raise GenaiExportError(f"quantization {mode!r} is not a weight-only mode")
    if block_size not in BLOCK_SIZES:
        sizes = ", ".join(map(str, BLOCK_SIZES))
        raise GenaiExportError(f"block size {block_size} is not one of {sizes}")
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    out.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(fp32)),
        bits=4 if mode == "int4" else 8,
        block_size=block_size,
        is_symmetric=True,
        accuracy_level=ACCURACY_LEVEL,
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(out), use_external_data_format=False)
    return out


def inline_chat_template(folder: Path) -> None:
    """Put an instruct model's chat template into tokenizer_config.json, where genai's
    tokenizer reads it: transformers 4.4x and later write it to chat_template.jinja."""
    template = folder / "chat_template.jinja"
    config_path = folder / "tokenizer_config.json"
    if not template.exists() or not config_path.exists():
        return
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.setdefault("chat_template", template.read_text(encoding="utf-8"))
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    template.unlink()


def write_genai_config(folder: Path, source_config: Path, model_file: str) -> Path:
    inline_chat_template(folder)
    hf_config = json.loads(source_config.read_text(encoding="utf-8"))
    config = genai_config(hf_config, graph_inputs(folder / model_file), model_file)
    path = folder / GENAI_CONFIG
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path
