"""The closed vocabulary: every command the rules tier knows, said with this home's names.

This is how Home Assistant's speech-to-phrase makes a small recognizer exact:
the recognizer may only hear sentences the templates can produce, filled with
the home's own entity, area and floor names, numbers in each range and the
template lists (colours, durations ...). The hassil templates are translated
as they stand, expression by expression, into one finite-state word graph
(pocketsphinx) and one word list (vosk); the graph is made deterministic and
minimal (`automaton`), so it grows with the distinct phrasings, not with the
number of sentences they expand to.

What the recognizer cannot say is left out rather than guessed: wildcards
(shopping-list items, free text) have no closed form, and a word with no
pronunciation in the engine's dictionary drops the phrasing or name that holds
it (`Grammar.unspeakable` lists them, so `edge-runtime doctor` can say which
names need an alias).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from hassil import Intents
from hassil.expression import (
    Alternative,
    Expression,
    ListReference,
    Permutation,
    RuleReference,
    Sentence,
    TextChunk,
)
from hassil.expression import Sequence as Seq
from hassil.intents import RangeSlotList, SlotList, TextSlotList
from hassil.numbers import get_rbnf_engine

from edge_runtime.cache import default_cache_dir, write_atomically
from edge_runtime.home import Home
from edge_runtime.nlu.rules import home_slot_lists, load_language, name_list_values
from edge_runtime.nlu.templates import block_lists
from edge_runtime.stt.automaton import (
    Dfa,
    Nfa,
    WordGraph,
    determinize,
    flatten,
    minimize,
    word_graph,
    words_of,
)

log = logging.getLogger(__name__)

GRAMMAR_VERSION = 1
"""Bumped when the translation changes, so cached grammars are rebuilt."""

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
MAX_PERMUTATION = 4
"""`(a;b;c;d)` becomes its 24 orders; longer permutations keep their written order."""

Pronounceable = Callable[[str], bool]


class Lexicon(Protocol):
    """An engine's dictionary as the grammar builder sees it."""

    added: dict[str, str]
    """Pronunciations the lexicon made up for words it did not have (compounds)."""

    def knows(self, word: str) -> bool: ...


@dataclass(frozen=True)
class Grammar:
    """A recognizer's closed vocabulary: a word graph and its words, with a cache key."""

    graph: WordGraph
    words: frozenset[str]
    key: str
    """Hash of everything the grammar was built from: equal keys, equal grammars."""
    unspeakable: tuple[str, ...] = ()
    """Words the engine cannot pronounce; the phrasings and names holding them are left out."""
    intents: tuple[str, ...] = ()
    """The intents that have at least one phrasing in the grammar."""
    pronunciations: tuple[tuple[str, str], ...] = ()
    """(word, phones) the engine's dictionary lacks, made from known words."""

    def to_json(self) -> dict[str, Any]:
        graph = self.graph
        return {
            "version": GRAMMAR_VERSION,
            "key": self.key,
            "graph": [graph.start, graph.final, graph.states, list(graph.transitions)],
            "words": sorted(self.words),
            "unspeakable": list(self.unspeakable),
            "intents": list(self.intents),
            "pronunciations": [list(p) for p in self.pronunciations],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grammar:
        start, final, states, transitions = data["graph"]
        return cls(
            graph=WordGraph(start, final, states, tuple(tuple(t) for t in transitions)),
            words=frozenset(data["words"]),
            key=data["key"],
            unspeakable=tuple(data["unspeakable"]),
            intents=tuple(data["intents"]),
            pronunciations=tuple((w, p) for w, p in data["pronunciations"]),
        )


def spoken_words(text: str) -> list[str]:
    """The words of a template chunk as a recognizer spells them (lower case, no punctuation)."""
    return [w.casefold() for w in _WORD.findall(text.replace("’", "'"))]


@dataclass
class _Vocabulary:
    """The words met so far, and those the engine could not pronounce."""

    pronounceable: Pronounceable
    said: set[str] = field(default_factory=set)
    unspeakable: set[str] = field(default_factory=set)

    def words(self, chunk: str) -> list[str] | None:
        words = spoken_words(chunk)
        missing = [w for w in words if not self.pronounceable(w)]
        if missing:
            self.unspeakable.update(missing)
            return None
        return words


@dataclass
class _Lists:
    """Every distinct slot list met, as a minimal automaton of its own, by token."""

    language: str
    vocabulary: _Vocabulary
    automata: dict[str, Dfa] = field(default_factory=dict)
    tokens: dict[tuple[Any, ...], str | None] = field(default_factory=dict)

    def token(self, slot_list: SlotList, lists: Mapping[str, SlotList]) -> str | None:
        """The token standing for `slot_list`, or None when none of its values can be said."""
        key = _list_key(slot_list)
        if key not in self.tokens:
            self.tokens[key] = None  # a list whose values mention itself says nothing more
            nfa = Nfa()
            final = nfa.state()
            translator = _Translator(nfa, self, lists, {})
            for phrase in self._phrases(slot_list):
                end = (
                    translator.build(phrase, nfa.start)
                    if isinstance(phrase, Expression)
                    else (translator.chain(phrase, nfa.start))
                )
                if end is not None:
                    nfa.link(end, final)
            dfa = minimize(determinize(nfa, final))
            if dfa is not None:
                token = f"{{{len(self.automata)}}}"
                self.automata[token] = dfa
                self.tokens[key] = token
        return self.tokens[key]

    def _phrases(self, slot_list: SlotList) -> Iterable[Expression | str]:
        if isinstance(slot_list, TextSlotList):
            return [value.text_in for value in slot_list.values]
        assert isinstance(slot_list, RangeSlotList)
        engine = get_rbnf_engine(slot_list.words_language or self.language)
        return {
            text.replace("-", " ")
            for number in slot_list.get_numbers()
            for text in engine.format_number(number).text_by_ruleset.values()
        }


def _list_key(slot_list: SlotList) -> tuple[Any, ...]:
    if isinstance(slot_list, RangeSlotList):
        return ("range", slot_list.start, slot_list.stop, slot_list.step, slot_list.fraction_type)
    assert isinstance(slot_list, TextSlotList)
    return ("text", *(repr(value.text_in) for value in slot_list.values))


class _Translator:
    """hassil expressions -> moves of an `Nfa`; `build` returns the end state, or None
    where nothing in the expression can be said (a wildcard, an unpronounceable word)."""

    def __init__(
        self,
        nfa: Nfa,
        lists: _Lists,
        slot_lists: Mapping[str, SlotList],
        rules: Mapping[str, Sentence],
    ) -> None:
        self.nfa = nfa
        self.lists = lists
        self.slot_lists = slot_lists
        self.rules = rules
        self._open_rules: set[str] = set()

    def build(self, expr: Expression, start: int) -> int | None:
        if isinstance(expr, TextChunk):
            return self.chain(expr.original_text or expr.text, start)
        if isinstance(expr, Alternative):
            return self._alternative(expr, start)
        if isinstance(expr, Permutation):
            return self._permutation(expr, start)
        if isinstance(expr, Seq):
            return self._sequence(expr.items, start)
        if isinstance(expr, RuleReference):
            return self._rule(expr.rule_name, start)
        if isinstance(expr, ListReference):
            return self._list(expr.list_name, start)
        raise TypeError(f"unexpected template expression {expr!r}")

    def chain(self, text: str, start: int) -> int | None:
        words = self.lists.vocabulary.words(text)
        if words is None:
            return None
        for word in words:
            nxt = self.nfa.state()
            self.nfa.add(start, word, nxt)
            start = nxt
        return start

    def _sequence(self, items: Iterable[Expression], start: int) -> int | None:
        end: int | None = start
        for item in _glued(list(items)):
            if end is None:
                return None
            end = self.build(item, end)
        return end

    def _alternative(self, expr: Alternative, start: int) -> int | None:
        end = self.nfa.state()
        said = False
        for item in expr.items:
            item_end = self.build(item, start)
            if item_end is not None:
                self.nfa.link(item_end, end)
                said = True
        if expr.is_optional:
            self.nfa.link(start, end)
            said = True
        return end if said else None

    def _permutation(self, expr: Permutation, start: int) -> int | None:
        orders = (
            itertools.permutations(expr.items)
            if len(expr.items) <= MAX_PERMUTATION
            else [expr.items]
        )
        end = self.nfa.state()
        said = False
        for order in orders:
            order_end = self._sequence(order, start)
            if order_end is not None:
                self.nfa.link(order_end, end)
                said = True
        return end if said else None

    def _rule(self, name: str, start: int) -> int | None:
        if name in self._open_rules or name not in self.rules:
            return None  # a rule that refers to itself says nothing
        self._open_rules.add(name)
        try:
            return self.build(self.rules[name].expression, start)
        finally:
            self._open_rules.discard(name)

    def _list(self, list_name: str, start: int) -> int | None:
        slot_list = self.slot_lists.get(list_name)
        if not isinstance(slot_list, RangeSlotList | TextSlotList):
            return None  # a wildcard: free text has no closed form
        token = self.lists.token(slot_list, self.slot_lists)
        if token is None:
            return None
        end = self.nfa.state()
        self.nfa.add(start, token, end)
        return end


MAX_GLUED_FORMS = 64


def _glued(items: list[Expression]) -> list[Expression]:
    """Join items written without a space between them: `minute[s]` is "minute" or "minutes",
    not "minute s". Only plain text is joined (a few forms at most); the rest stays."""
    out: list[Expression] = []
    for item in items:
        previous = out[-1] if out else None
        forms = _text_forms(item)
        before = _text_forms(previous) if previous is not None else None
        if forms is not None and before is not None and _touch(before, forms):
            joined = sorted({b + f for b in before for f in forms})
            if len(joined) <= MAX_GLUED_FORMS:
                out[-1] = Alternative(items=[TextChunk(text=j, original_text=j) for j in joined])
                continue
        out.append(item)
    return out


def _touch(before: list[str], after: list[str]) -> bool:
    """Does some form end in a letter where some form of the next item starts with one?"""
    ends = any(b and not b[-1].isspace() for b in before)
    starts = any(a and not a[0].isspace() for a in after)
    return ends and starts


def _text_forms(expr: Expression) -> list[str] | None:
    """Every string a text-only expression can be (None when it holds lists or rules)."""
    if isinstance(expr, TextChunk):
        return [expr.original_text if expr.original_text is not None else expr.text]
    if isinstance(expr, Alternative):
        forms: list[str] = [""] if expr.is_optional else []
        for item in expr.items:
            sub = _text_forms(item)
            if sub is None:
                return None
            forms += sub
        return forms if len(forms) <= MAX_GLUED_FORMS else None
    if isinstance(expr, Seq) and not isinstance(expr, Permutation):
        joined = [""]
        for item in expr.items:
            sub = _text_forms(item)
            if sub is None or len(joined) * len(sub) > MAX_GLUED_FORMS:
                return None
            joined = [j + f for j in joined for f in sub]
        return joined
    return None


def _patterns(
    intents: Intents,
    home_lists: Mapping[str, SlotList],
    lists: _Lists,
    intent_names: Iterable[str],
) -> tuple[Dfa | None, list[str]]:
    """The minimal automaton of every template sentence that can be said in this home."""
    nfa = Nfa()
    final = nfa.state()
    served = []
    for intent_name in intent_names:
        said = False
        for data in intents.intents[intent_name].data:
            slot_lists = block_lists(data, {**intents.slot_lists, **home_lists})
            if slot_lists is None:
                continue
            rules = {**intents.expansion_rules, **data.expansion_rules}
            translator = _Translator(nfa, lists, slot_lists, rules)
            for sentence in data.sentences:
                end = translator.build(sentence.expression, nfa.start)
                if end is not None:
                    nfa.link(end, final)
                    said = True
        if said:
            served.append(intent_name)
    return minimize(determinize(nfa, final)), served


def grammar_key(home: Home, language: str, intent_names: Iterable[str] | None, engine: str) -> str:
    """Hash of everything a grammar is built from: the translation, the templates and hassil
    (their versions), the language, the intents (`*`: all), the home and the engine."""
    parts = {
        "format": GRAMMAR_VERSION,
        "templates": metadata.version("home-assistant-intents"),
        "hassil": metadata.version("hassil"),
        "language": language,
        "intents": sorted(intent_names) if intent_names is not None else "*",
        "home": home.model_dump(mode="json"),
        "engine": engine,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


class GrammarError(ValueError):
    """No command of the templates can be said in this home with this engine."""


def build_grammar(
    home: Home,
    language: str,
    lexicon: Lexicon,
    intent_names: Iterable[str] | None = None,
    engine: str = "",
) -> Grammar:
    """The grammar of every command the templates know in `home` (all intents when unset).

    `lexicon` says whether the engine's dictionary has a word; `engine` goes
    into the key, so a grammar built for another dictionary is not reused.
    """
    intents: Intents = load_language(language)
    chosen = sorted(intent_names) if intent_names is not None else None
    names = chosen if chosen is not None else sorted(intents.intents)
    home_lists: dict[str, SlotList] = {
        **home_slot_lists(home),
        "name": TextSlotList(name="name", values=name_list_values(home)),
    }
    vocabulary = _Vocabulary(lexicon.knows)
    lists = _Lists(language, vocabulary)
    patterns, served = _patterns(intents, home_lists, lists, names)
    if patterns is None:
        raise GrammarError(f"no command of the {language!r} templates can be said in this home")
    whole = flatten(patterns, lists.automata)
    assert whole is not None  # a pattern that can be said has lists that can be said
    return Grammar(
        graph=word_graph(whole),
        words=frozenset(words_of(whole)),
        key=grammar_key(home, language, chosen, engine),
        unspeakable=tuple(sorted(vocabulary.unspeakable)),
        intents=tuple(served),
        pronunciations=tuple(sorted(lexicon.added.items())),
    )


def load_or_build_grammar(
    home: Home,
    language: str,
    lexicon: Lexicon,
    engine: str,
    cache_dir: Path | None,
    intent_names: Iterable[str] | None = None,
) -> Grammar:
    """The grammar from the cache when the home, templates and engine are unchanged, else built
    (and cached). A damaged cache file is rebuilt, never trusted."""
    intents = sorted(intent_names) if intent_names is not None else None
    key = grammar_key(home, language, intents, engine)
    path = (cache_dir or default_cache_dir()) / "grammars" / f"{engine}-{key}.json"
    try:
        cached = Grammar.from_json(json.loads(path.read_text(encoding="utf-8")))
        if cached.key == key:
            log.info("grammar %s from the cache (%s)", key, path)
            return cached
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if path.exists():
            log.warning("grammar cache %s is unreadable (%s); building it again", path, exc)
    started = time.monotonic()
    grammar = build_grammar(home, language, lexicon, intents, engine)
    log.info(
        "grammar %s built in %.2f s: %d words, %d states, %d intents%s",
        key,
        time.monotonic() - started,
        len(grammar.words),
        grammar.graph.states,
        len(grammar.intents),
        f"; no pronunciation for {', '.join(grammar.unspeakable)}" if grammar.unspeakable else "",
    )
    try:
        write_atomically(path, json.dumps(grammar.to_json()))
    except OSError as exc:
        log.warning("cannot cache the grammar in %s (%s); it is built again next start", path, exc)
    return grammar
