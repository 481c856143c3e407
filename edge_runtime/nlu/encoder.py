"""Tier 2, encoder: a fine-tuned int8 MiniLM says what is asked; hassil fills the slots.

How one sentence is understood (docs/cascade.md has worked examples):

1. The lexicon finds what the sentence refers to: entities, areas, floors
   (tolerating folded nouns, missing words and speech-recognition slips),
   numbers (spelled or not) and the templates' listed values (colours …).
   A negated or ambiguous sentence stops here: no action.
2. Those words become placeholders ("kill the garage lamp" -> "kill the
   reading light") and the classifier, all-MiniLM-L6-v2 fine-tuned on template
   sentences, our rewrites and non-commands (training/), gives a probability
   per intent and for `none`.
3. For the likely intents, the template examples of that intent are re-bound
   to the sentence's own names and numbers ("turn off the Garage Light") and
   hassil matches the rebuilt sentence against that intent only, so the slots
   are exactly Home Assistant's. An example that would drop something the
   person said, or needs something they did not say, is never used.
4. The confidence is the classifier's probability; below the cascade's
   threshold the answer is "not understood".
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from edge_runtime.cache import default_cache_dir
from edge_runtime.home import Home
from edge_runtime.inference.catalog import (
    ModelIntegrityError,
    models_dir,
    verify_file,
)
from edge_runtime.inference.classifier import ClassifierError, IntentTagger, labels_of
from edge_runtime.inference.encoder import load_tokenizer
from edge_runtime.inference.session import ModelLoadError, create_session
from edge_runtime.messages import Intent, TextRequest
from edge_runtime.nlu import examples as examples_module
from edge_runtime.nlu.base import NluContext, NluError, catalog_model, register_tier
from edge_runtime.nlu.clauses import groupings
from edge_runtime.nlu.domains import intent_domain, targeted_entities
from edge_runtime.nlu.homophones import Homophones
from edge_runtime.nlu.lexicon import HOME_KINDS, Lexicon, Phrase, Reading, Span
from edge_runtime.nlu.rules import HomeMatcher, to_intent
from edge_runtime.nlu.slots import CONTENT_LISTS, PLACES, SlotFiller, list_variants
from edge_runtime.nlu.words import Polarity, is_number, tokenize

log = logging.getLogger(__name__)

NONE = "none"
"""The classifier's label for what is not a command."""
FREE_TEXT_TAGS = ("B-W", "I-W")
"""Word tags of free text (list items, timer names, messages): begin and inside."""
NOT_A_COMMAND = "NotACommand"
"""Our templates of statements, negations and chit-chat (trained as `none`)."""
INTENTS_TRIED = 3
MIN_INTENT_PROBABILITY = 0.05
WARM_UP = "could you kill the lights please"


class EncoderTier:
    """Paraphrases: intent from the fine-tuned encoder, slots from the home's lists via hassil."""

    name = "encoder"

    def __init__(self, context: NluContext, model_id: str, cache_dir: Path) -> None:
        self.node_id = context.node_id
        self.language = context.language
        paraphrases = examples_module.paraphrase_templates(context.language)
        matcher = HomeMatcher(context.home, context.language, paraphrases)
        self.intent_names = frozenset(matcher.intents.intents) - {NOT_A_COMMAND}
        self.list_variants = list_variants(matcher.intents)
        self.lexicon = Lexicon(context.home, context.language, self._content_phrases())
        self.device_class = {
            e.name: e.attributes.get("device_class") for e in context.home.entities
        }
        self.home = context.home
        self.model = _load_model(model_id, context)
        key = examples_module.cache_key(context.language, self.lexicon.res, paraphrases)
        examples = examples_module.load_or_draw(
            cache_dir / f"examples-{key}.json", matcher.intents, self.lexicon.res
        )
        self.slots = SlotFiller(
            matcher, self.lexicon, examples, context.home.context_area_name, self.list_variants
        )
        self.vocabulary = _vocabulary(examples, self.lexicon)
        known = self.vocabulary | self.lexicon.name_words
        self.lexicon.homophones = Homophones.for_language(
            context.language, self.lexicon.name_words, known, cache_dir
        )
        self.lexicon.command_homophones = Homophones.for_language(
            context.language, _command_words(examples, self.lexicon), known, cache_dir
        )
        matcher.compile_all()
        self.recognize(TextRequest(WARM_UP))  # the first command should not pay for lazy set-up

    def _content_phrases(self) -> Iterable[Phrase]:
        for list_name, variants in self.list_variants.items():
            if list_name in CONTENT_LISTS:
                for said in variants:
                    yield Phrase(list_name, tuple(tokenize(said)), said)

    # --- from the person's words to the classifier's input ---

    def delexicalize(self, reading: Reading) -> list[str]:
        """The sentence's words with names replaced by the placeholders the model learnt."""
        words = list(reading.tokens)
        for span in sorted(reading.spans, key=lambda s: -s.start):
            if not (span.soft and span.kind == "name"):  # "the tv" stays: templates say "tv"
                words[span.start : span.end] = self._placeholder(span).split()
        return words

    def _placeholder(self, span: Span) -> str:
        placeholders = self.lexicon.res.placeholders
        if span.kind == "name":
            domain = span.phrase.domain or ""
            device_class = self.device_class.get(span.phrase.value)
            key = f"{domain}.{device_class}" if device_class else domain
            return placeholders.get(key) or placeholders.get(domain, "device")
        if span.kind in PLACES:
            return placeholders[span.kind]
        return " ".join(span.phrase.tokens)

    # --- from an intent back to Home Assistant's slots ---

    def says_the_opposite(self, intent: str, said: set[str]) -> bool:
        """Only words against the intent ("off" and no "on" for HassTurnOn)."""
        return only_the_opposite(said, self.lexicon.res.intent_polarity.get(intent))

    def says_nothing_of(self, intent: str, said: set[str]) -> bool:
        """None of the words this intent needs (`intent_cues`) is said."""
        cues = self.lexicon.res.intent_cues.get(intent)
        return cues is not None and not said & cues

    def guesses_the_place(self, intent: Intent, reading: Reading) -> bool:
        """The node's own area stands in for a place nobody said, while words the templates and
        the home never use were said: likely a name we could not read ("the tee vee",
        "the guessed room"), so acting on the whole room here would be a guess."""
        area = intent.slots.get("area")
        if area is None or reading.of_kind("area") or reading.of_kind("floor"):
            return False
        in_spans = {i for span in reading.spans for i in range(span.start, span.end)}
        return any(
            token not in self.vocabulary and not is_number(token)
            for i, token in enumerate(reading.tokens)
            if i not in in_spans
        )

    def against_the_domain(self, intent: Intent, said: set[str]) -> bool:
        """Among the verbs of the domain the intent acts on, only its opposite's are said
        ("lock" for HassTurnOff on a lock), whatever else the sentence says."""
        domain = intent_domain(intent, self.home)
        return only_the_opposite(
            said, self.lexicon.res.domain_polarity.get(domain, {}).get(intent.name)
        )

    def wrong_domain(self, intent: Intent, said: set[str]) -> bool:
        """The sentence says a word of one domain ("lock") and the intent acts on another."""
        acted_on = intent_domain(intent, self.home)
        return any(
            said & cues and domain != acted_on
            for domain, cues in self.lexicon.res.domain_cues.items()
        )

    def recognize(self, request: TextRequest) -> Intent | None:
        """The sentence as written; where that gives nothing, once more with its unknown words
        read as the command words they sound like ("paws the tv")."""
        reading = self.lexicon.read(request.text)
        intent = self._recognize(request, reading)
        if intent is None:
            heard = self.lexicon.read(request.text, commands=True)
            if heard.tokens != reading.tokens:
                intent = self._recognize(request, heard)
        return intent

    def _recognize(self, request: TextRequest, reading: Reading) -> Intent | None:
        if reading.negated or reading.ambiguous:
            log.debug("encoder: %r is negated or ambiguous; no action", request.text)
            return None
        words = self.delexicalize(reading)
        analysis = self.model.analyze(words)
        log.debug(
            "encoder: %r -> %s -> %s %s", request.text, words, analysis.intents[:3], analysis.tags
        )
        said = set(reading.tokens)
        outside_names = set(words)  # the sentence with names replaced by placeholders
        for label, probability in analysis.intents[:INTENTS_TRIED]:
            if label == NONE or probability < MIN_INTENT_PROBABILITY:
                return None
            if self.says_the_opposite(label, said) or self.says_nothing_of(label, said):
                log.debug("encoder: %r does not say %s", request.text, label)
                continue
            result = self.slots.fill(label, reading, words, free_text(words, analysis.tags))
            if result is None:
                continue
            intent = to_intent(result, probability, self.name, self.node_id)
            if (
                self.wrong_domain(intent, outside_names)
                or self.against_the_domain(intent, said)
                or self.guesses_the_place(intent, reading)
            ):
                log.debug("encoder: %r does not fit %s %s", request.text, label, intent.slots)
                continue
            return dataclasses.replace(intent, confidence=probability)
        return None

    def agrees(self, request: TextRequest, intent: Intent) -> bool:
        """A second opinion on the generator's answer where this tier had none of its own
        (its slots could not be rebuilt from a template): the model ranks the same intent
        first for the sentence, or for one of its clauses ("it's boiling in here, switch the
        fan on": a reason, then the command), nothing said there is against it, no negation
        anywhere, and the answer leaves out no name, area or floor the sentence says and
        writes no number it does not say."""
        whole = self.lexicon.read(request.text)
        if whole.negated or whole.ambiguous or not says_what_was_said([intent], whole, self.home):
            return False
        clauses = dict.fromkeys(c for cut in groupings(request.text, self.language) for c in cut)
        clauses.pop(request.text, None)
        readings = itertools.chain([whole], (self.lexicon.read(clause) for clause in clauses))
        return any(self._reads_as(reading, intent) for reading in readings)

    def _reads_as(self, reading: Reading, intent: Intent) -> bool:
        words = self.delexicalize(reading)
        label, probability = self.model.analyze(words).intents[0]
        said = set(reading.tokens)
        return (
            label == intent.name
            and probability >= MIN_INTENT_PROBABILITY
            and not self.says_the_opposite(label, said)
            and not self.says_nothing_of(label, said)
            and not self.wrong_domain(intent, set(words))
            and not self.against_the_domain(intent, said)
            and not self.guesses_the_place(intent, reading)
        )

    def covers(self, request: TextRequest, intents: Sequence[Intent]) -> bool:
        """Whether another tier's commands, together, name every thing of the home and every
        number the sentence says, and no other number."""
        return says_what_was_said(intents, self.lexicon.read(request.text), self.home)


def only_the_opposite(said: set[str], polarity: Polarity | None) -> bool:
    """Words against an intent are said, and none of its own (no polarity: never)."""
    if polarity is None:
        return False
    own, opposite = polarity
    return bool(said & opposite) and not said & own


def says_what_was_said(intents: Sequence[Intent], reading: Reading, home: Home) -> bool:
    """Every thing of the home and every number the sentence says is in the intents, and no
    other number: "get rover to vacuum the office" without Rover, or "all the lights on floor
    two" without the floor, is not what was asked. A name is also in them where an intent
    acts on that one entity by other words: "the bedroom curtain" as the curtains of a
    bedroom that has one."""
    slots = [slot for intent in intents for slot in intent.slots.values()]
    values = {str(slot.value).casefold() for slot in slots}
    for span in reading.spans:
        if span.kind not in HOME_KINDS or span.soft:
            continue
        said = {p.value.casefold() for p in (span.phrase, *span.rivals)}
        if not said & values and not _acts_on(intents, span, home):
            return False
    written = {
        float(slot.value)
        for slot in slots
        if isinstance(slot.value, int | float) and not isinstance(slot.value, bool)
    }
    return written == {number for n in reading.numbers if (number := _number(n)) is not None}


def _acts_on(intents: Sequence[Intent], span: Span, home: Home) -> bool:
    """One of the intents picks out exactly the one entity the span names (an ambiguous span
    names no one entity)."""
    if span.kind != "name" or span.rivals or not span.phrase.key:
        return False
    named = frozenset({span.phrase.key})
    return any(targeted_entities(home, i.name, i.slot_values()) == named for i in intents)


def _number(said: str) -> float | None:
    try:
        return float(said)
    except ValueError:
        return None


def _vocabulary(examples: examples_module.ExampleIndex, lexicon: Lexicon) -> frozenset[str]:
    """Every word the templates, the home and the language's word lists use."""
    res = lexicon.res
    words = set(_template_words(examples))
    words |= set(lexicon.name_vocabulary) | set(res.units) | set(res.tens)
    for known in (res.fillers, res.stop_words, res.generic_words, res.unit_words, res.negations):
        words |= known
    words |= set(res.units_of)
    return frozenset(words)


def _command_words(examples: examples_module.ExampleIndex, lexicon: Lexicon) -> frozenset[str]:
    """The words of the templates' commands that a word sounding the same may stand for
    ("paws the tv"), numbers left out: "fore" must never become a number."""
    numbers = set(lexicon.res.units) | set(lexicon.res.tens) | lexicon.res.hundred
    return frozenset(w for w in _template_words(examples) if w.isalpha() and w not in numbers)


def _template_words(examples: examples_module.ExampleIndex) -> Iterable[str]:
    """Every word of the examples drawn from the templates."""
    return (
        word
        for groups in examples.by_intent.values()
        for group in groups.values()
        for example in group
        for word in example.words
    )


def free_text(words: list[str], tags: list[str]) -> list[str]:
    """The runs of words tagged as free text, each as one string."""
    begin, inside = FREE_TEXT_TAGS
    runs: list[list[str]] = []
    for word, tag in zip(words, tags, strict=True):
        if tag == begin or (tag == inside and not runs):
            runs.append([word])
        elif tag == inside:
            runs[-1].append(word)
    return [" ".join(run) for run in runs]


def _load_model(model_id: str, context: NluContext) -> IntentTagger:
    model = catalog_model(model_id, "token-classification", "an intent tagger")
    try:
        session = create_session(model, context.profile).session
        directory = models_dir()
        tokenizer = load_tokenizer(verify_file(directory, model.file("tokenizer.json")))
        labels = labels_of(verify_file(directory, model.file("config.json")))
        return IntentTagger(session, tokenizer, labels)
    except (ModelIntegrityError, ModelLoadError, ClassifierError, KeyError) as exc:
        raise NluError(f"encoder model {model_id}: {exc}") from None


@register_tier("encoder")
def _build_encoder(context: NluContext) -> EncoderTier:
    model_id = context.profile.tiers.encoder.model
    if model_id is None:
        raise NluError(f"profile {context.profile.id} enables the encoder tier but names no model")
    return EncoderTier(context, model_id, context.cache_dir or default_cache_dir())
