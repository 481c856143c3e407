"""The generator tier's machinery on randomly initialised models made here: export of two
architectures (Llama and Qwen2) through `models export`, the catalog check, the bounds of
every call, and the grammar, which must hold whatever the weights write.

Real torch, optimum, onnxruntime and onnxruntime-genai; nothing is mocked. The trained
model that ships is tested through the daemon in test_generator_daemon.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
import torch
from conftest import REPO, Node, Probe
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from edge_runtime.home import demo_home
from edge_runtime.inference.catalog import load_catalog, verify_model, write_entry
from edge_runtime.inference.export import ExportError, export
from edge_runtime.inference.genai_export import DEFAULT_BLOCK
from edge_runtime.inference.generator import (
    Budget,
    GenerationError,
    Guidance,
    TextGenerator,
)
from edge_runtime.messages import TextRequest
from edge_runtime.nlu.base import NluContext
from edge_runtime.nlu.generator import GeneratorTier, copied_from
from edge_runtime.profiles import load_profiles
from training import train_generator as tg

SENTENCES = [
    "turn on the kitchen light and lock the front door",
    "set the bedroom lamp to forty percent",
    "what is the temperature in the living room",
    "add eggs to my shopping list",
]


def _tokenizer() -> PreTrainedTokenizerFast:
    examples = [tg.Example(s, '[{"intent":"HassTurnOn","slots":{}}]') for s in SENTENCES * 5]
    return tg.train_tokenizer(examples, 512)


CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)


def _chat_tokenizer(tokenizer: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """The same vocabulary as an instruct model's: no `<sep>`, a chat template."""
    chat = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer.backend_tokenizer,
        bos_token=tg.BOS,
        eos_token=tg.EOS,
        pad_token=tg.PAD,
    )
    chat.chat_template = CHAT_TEMPLATE
    return chat


def _qwen2(tokenizer: PreTrainedTokenizerFast) -> Qwen2ForCausalLM:
    config = Qwen2Config(  # type: ignore[no-untyped-call]
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(config)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory with a random Llama intent model (int4 in blocks of 32, as the shipped
    one) and a random Qwen2 instruct model (int8 in the default blocks, a chat template and no
    `<sep>`), exported."""
    root = tmp_path_factory.mktemp("generators")
    torch.manual_seed(0)
    tokenizer = _tokenizer()
    sources = {
        "llama": (tg.build_model(tg.SIZES["tiny"], tokenizer), tokenizer),
        "qwen2": (_qwen2(tokenizer), _chat_tokenizer(tokenizer)),
    }
    models = root / "models"
    for (name, (model, own_tokenizer)), (quantize, block) in zip(
        sources.items(), (("int4", 32), ("int8", None)), strict=True
    ):
        model.save_pretrained(root / name)
        own_tokenizer.save_pretrained(root / name)
        tg.portable_tokenizer_config(root / name)
        model_id = f"random-{name}"
        export(root / name, "text-generation", quantize, model_id, models, print, block_size=block)  # type: ignore[arg-type]
    return models


def _load(models: Path, model_id: str) -> TextGenerator:
    return TextGenerator.from_catalog(load_catalog(models).get(model_id), models)


def test_both_architectures_export_with_a_genai_config_and_catalog_entry(exported: Path) -> None:
    catalog = load_catalog(exported)
    for model_id, kind, quantization, bits, block in (
        ("random-llama", "llama", "int4", 4, 32),
        ("random-qwen2", "qwen2", "int8-weights", 8, DEFAULT_BLOCK),
    ):
        model = catalog.get(model_id)
        assert model.task == "text-generation" and model.quantization == quantization
        assert model.recipe.endswith(f"--block-size {block}")
        verify_model(model, exported)
        graph = onnx.load(str(exported / model_id / "model.onnx")).graph
        weights = [n for n in graph.node if n.op_type == "MatMulNBits"]
        assert weights and all(
            {a.name: a.i for a in n.attribute}.items()
            >= {"bits": bits, "block_size": block}.items()
            for n in weights
        )
        config = json.loads((exported / model_id / "genai_config.json").read_text())
        assert config["model"]["type"] == kind
        assert config["search"]["past_present_share_buffer"] is False
        generator = _load(exported, model_id)
        prompt = generator.prompt("turn on the lamp")
        assert generator.generate(prompt, Budget(4)).tokens <= 4


def test_a_block_size_is_refused_where_nothing_is_quantized_in_blocks(tmp_path: Path) -> None:
    source = tmp_path / "source"
    tokenizer = _tokenizer()
    _qwen2(tokenizer).save_pretrained(source)
    tokenizer.save_pretrained(source)
    with pytest.raises(ExportError, match="--block-size applies to a text-generation model"):
        export(source, "text-generation", "none", "x", tmp_path / "models", print, block_size=32)
    with pytest.raises(ExportError, match="--block-size applies to a text-generation model"):
        export(
            source, "token-classification", "avx2", "x", tmp_path / "models", print, block_size=32
        )


def test_export_refuses_an_encoder_quantization_for_a_generator(
    exported: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    tokenizer = _tokenizer()
    _qwen2(tokenizer).save_pretrained(source)
    tokenizer.save_pretrained(source)
    with pytest.raises(ExportError, match="does not apply to text-generation"):
        export(source, "text-generation", "avx2", "x", tmp_path / "models", print)


def test_a_corrupted_generator_is_refused_by_the_catalog_check(
    exported: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(exported, models)
    onnx_file = models / "random-llama" / "model.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(GenerationError, match="sha256 mismatch"):
        _load(models, "random-llama")


def test_budget_stop_strings_and_deadline_bound_every_call(exported: Path) -> None:
    generator = _load(exported, "random-llama")
    prompt = generator.prompt(SENTENCES[0])
    free = Guidance("regex", "[a-z ]{40,60}")  # never ends early: only the bounds stop it
    cut = generator.generate(prompt, Budget(max_new_tokens=6), free)
    assert (cut.finish, cut.tokens) == ("budget", 6)
    stopped = generator.generate(prompt, Budget(40, stop=(" ",)), Guidance("regex", "ab ab ab"))
    assert (stopped.finish, stopped.text) == ("stop", "ab")
    late = generator.generate(prompt, Budget(40, deadline_s=0.0), free)
    assert late.finish == "deadline" and late.tokens == 0
    whole = generator.generate(prompt, Budget(40), Guidance("regex", "yes|no"))
    assert whole.finish == "eos" and whole.text in ("yes", "no")
    assert 0.0 < whole.probability <= 1.0 and whole.least_sure >= whole.probability


def test_a_prompt_longer_than_the_context_is_refused(exported: Path) -> None:
    generator = _load(exported, "random-llama")
    with pytest.raises(GenerationError, match="reads at most"):
        generator.generate([1] * generator.context_length, Budget(4))


@pytest.mark.parametrize("model_id", ["random-llama", "random-qwen2"])
def test_sampling_random_weights_under_the_grammar_only_ever_names_what_exists(
    exported: Path, model_id: str
) -> None:
    """Whatever the weights write, it parses, each intent takes only the slots HA's templates
    give it, and every name, area and floor is one of the home's (or its area, `@here`)."""
    home = demo_home()
    context = NluContext(home, "en", "n1", load_profiles()["x86-64"])
    tier = GeneratorTier(context, _load(exported, model_id))
    names = {e.name for e in home.entities} | {a.name for a in home.areas}
    names |= {f.name for f in home.floors}
    answers = 0
    for seed in range(24):
        prompt = tier.generator.prompt(SENTENCES[0])
        generation = tier.generator.generate(
            prompt, Budget(160), Guidance("lark_grammar", tier.grammar), sample_seed=seed
        )
        if generation.finish != "eos":
            continue  # ran out of budget inside free text: "not understood", never invalid
        written = json.loads(generation.text)
        assert isinstance(written, list) and len(written) <= 3
        intents = tier.read(generation)
        assert len(intents) == len(written), generation.text  # every item read back as valid
        for intent in intents:
            for slot in ("area", "floor"):
                if slot in intent.slots:
                    assert intent.slots[slot].value in names
            answers += 1
    assert answers >= 5


def test_the_tier_answers_nothing_rather_than_guess_on_random_weights(exported: Path) -> None:
    context = NluContext(demo_home(), "en", "n1", load_profiles()["x86-64"])
    tier = GeneratorTier(context, _load(exported, "random-llama"))
    for sentence in SENTENCES:
        for intent in tier.recognize_all(TextRequest(sentence)):
            assert intent.confidence < 0.5  # a random model is never sure


def test_an_instruct_model_is_prompted_through_its_chat_template_and_answers_in_words(
    exported: Path,
) -> None:
    intent_model, chat_model = _load(exported, "random-llama"), _load(exported, "random-qwen2")
    assert intent_model.intent_model and not intent_model.chat_model
    assert chat_model.chat_model and not chat_model.intent_model
    prompt = chat_model.decode(chat_model.prompt("what can you do?", "Be brief."))
    assert "system: Be brief." in prompt and prompt.endswith("assistant: ")
    context = NluContext(demo_home(), "en", "n1", load_profiles()["x86-64"])
    chat_tier = GeneratorTier(context, chat_model)
    answer = chat_tier.answer_freely(TextRequest("what can you do?"))
    assert chat_tier.answers_freely and isinstance(answer, str) and answer
    assert GeneratorTier(context, intent_model).answer_freely(TextRequest("what?")) is None


def test_a_node_with_an_instruct_generator_answers_a_free_question_on_reply(
    exported: Path,
    tmp_path: Path,
    start_node: Callable[..., Node],
    probe_factory: Callable[..., Probe],
) -> None:
    """The x86-64 profile's generator replaced by an instruct model (the random Qwen2 with a
    chat template): a question no intent covers is answered in words on `reply`, and its
    intent event says "not understood"; a command is still a command."""
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models)
    shutil.rmtree(models / "edge-intent-slm-int4")
    shutil.copytree(exported / "random-qwen2", models / "edge-intent-slm-int4")
    chat = load_catalog(exported).get("random-qwen2")
    files = tuple(
        f.model_copy(update={"path": f.path.replace("random-qwen2/", "edge-intent-slm-int4/")})
        for f in chat.files
    )
    write_entry(chat.model_copy(update={"id": "edge-intent-slm-int4", "files": files}), models)
    node = start_node(env={"EDGE_RUNTIME_MODELS": str(models)})
    probe = probe_factory([f"edge/{node.node_id}/#"])
    probe.wait_for(f"edge/{node.node_id}/status", lambda m: m.payload == b"online")
    probe.publish(f"edge/{node.node_id}/text", {"text": "what can you do?", "id": "q-1"})
    reply = probe.wait_for(f"edge/{node.node_id}/reply").json()
    assert (reply["id"], reply["text"]) == ("q-1", "what can you do?")
    assert isinstance(reply["answer"], str) and reply["answer"]
    event = probe.wait_for(f"edge/{node.node_id}/intent", lambda m: m.json()["id"] == "q-1")
    assert event.json()["intent"] is None
    probe.publish(f"edge/{node.node_id}/text", {"text": "turn on the desk lamp", "id": "c-1"})
    command = probe.wait_for(f"edge/{node.node_id}/intent", lambda m: m.json()["id"] == "c-1")
    assert command.json()["intent"] == "HassTurnOn"


@pytest.mark.parametrize(
    ("answer", "copied"),
    [
        ('[{"intent":"HassTurnOn","slots":{"name":"den lamp"}}]', True),
        ('[{"intent":"HassTurnOn","slots":{"name":"desk lamp"}}]', False),
        # a domain the sentence does not say is inferred, unless its device class is said
        ('[{"intent":"HassTurnOn","slots":{"area":"@here","domain":"light"}}]', False),
        (
            '[{"intent":"HassTurnOn","slots":{"area":"@here","device_class":"curtain",'
            '"domain":"cover"}}]',
            True,
        ),
        (
            '[{"intent":"HassTurnOn","slots":{"area":"@here","device_class":"gate",'
            '"domain":"cover"}}]',
            False,
        ),
    ],
)
def test_an_answer_counts_only_where_it_copies_the_sentences_words(
    answer: str, copied: bool
) -> None:
    assert copied_from(answer, "i want the den lamp and the curtains open") is copied
