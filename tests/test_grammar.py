"""The closed vocabulary: templates and the home's names become one small word graph."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import EVAL_FIXTURES
from hassil.expression import Alternative, Sequence, TextChunk

from edge_runtime.home import Home, load_home
from edge_runtime.stt.automaton import Dfa, Nfa, determinize, minimize, word_graph
from edge_runtime.stt.grammar import (
    Grammar,
    _glued,
    _text_forms,
    build_grammar,
    load_or_build_grammar,
    spoken_words,
)


@dataclass
class Words:
    """A lexicon that knows every word but those it is told to refuse."""

    refused: frozenset[str] = frozenset()
    added: dict[str, str] = field(default_factory=dict)

    def knows(self, word: str) -> bool:
        return word not in self.refused


def accepts(graph_dfa: Dfa, sentence: str) -> bool:
    state = graph_dfa.start
    for word in sentence.split():
        if word not in graph_dfa.edges[state]:
            return False
        state = graph_dfa.edges[state][word]
    return state in graph_dfa.finals


def graph_accepts(grammar: Grammar, sentence: str) -> bool:
    """Walk the word graph (a nondeterministic one: a word may lead to two states)."""
    states = {grammar.graph.start}
    moves: dict[int, list[tuple[str, int]]] = {}
    for a, b, _p, word in grammar.graph.transitions:
        moves.setdefault(a, []).append((word, b))
    words = sentence.split()
    for index, word in enumerate(words):
        last = index == len(words) - 1
        states = {b for s in states for w, b in moves.get(s, []) if w == word}
        if last:
            return grammar.graph.final in states
    return False


@pytest.fixture(scope="module")
def home() -> Home:
    return load_home(EVAL_FIXTURES)


@pytest.fixture(scope="module")
def grammar(home: Home) -> Grammar:
    return build_grammar(home, "en", Words())


def test_minimizing_merges_shared_prefixes_and_endings() -> None:
    nfa = Nfa()
    final = nfa.state()
    for sentence in ("turn on the lamp", "turn off the lamp", "turn on the fan"):
        state = nfa.start
        for word in sentence.split():
            nxt = nfa.state()
            nfa.add(state, word, nxt)
            state = nxt
        nfa.link(state, final)
    dfa = minimize(determinize(nfa, final))
    assert dfa is not None
    assert accepts(dfa, "turn on the fan") and accepts(dfa, "turn off the lamp")
    assert not accepts(dfa, "turn off the fan") and not accepts(dfa, "turn on the")
    assert dfa.size <= 7  # 13 states as written
    graph = word_graph(dfa)
    assert all(word for *_rest, word in graph.transitions)  # no empty moves


def test_a_suffix_written_without_a_space_joins_its_word() -> None:
    minute = Sequence(
        items=[
            TextChunk(text=" minute"),
            Alternative(items=[TextChunk(text="s")], is_optional=True),
        ]
    )
    assert sorted(_text_forms(minute) or []) == [" minute", " minutes"]
    (joined,) = _glued(list(minute.items))
    assert sorted(_text_forms(joined) or []) == [" minute", " minutes"]
    assert spoken_words("What's the Temperature?") == ["what's", "the", "temperature"]


def test_the_grammar_says_the_commands_of_the_home(grammar: Grammar) -> None:
    for sentence in (
        "turn on the bedroom lamp",
        "set a timer for five minutes",
        "set the bedroom lamp brightness to fifty percent",
        "set the office thermostat to twenty one degrees",
        "lock the front door",
        "what is the temperature in the office",
    ):
        assert graph_accepts(grammar, sentence), sentence
    assert "HassTurnOn" in grammar.intents and "HassStartTimer" in grammar.intents


def test_the_grammar_says_nothing_else(grammar: Grammar) -> None:
    for sentence in (
        "turn on the bedroom",  # a command cut short
        "turn on the garden gnome",  # no such thing in the home
        "set a timer for five minute s",
        "play some jazz",  # a wildcard: no closed form
    ):
        assert not graph_accepts(grammar, sentence), sentence
    assert "jazz" not in grammar.words


def test_a_word_the_engine_cannot_say_drops_its_phrasings_not_the_grammar(home: Home) -> None:
    grammar = build_grammar(home, "en", Words(frozenset({"lamp"})))
    assert "lamp" in grammar.unspeakable
    assert not graph_accepts(grammar, "turn on the bedroom lamp")
    assert graph_accepts(grammar, "lock the front door")


def test_the_graph_is_a_few_thousand_states_not_a_hundred_thousand(grammar: Grammar) -> None:
    assert grammar.graph.states < 5000
    assert len(grammar.words) < 1000


def test_the_grammar_is_cached_and_rebuilt_when_the_home_changes(
    home: Home, tmp_path: Path
) -> None:
    first = load_or_build_grammar(home, "en", Words(), "test", tmp_path)
    (cached,) = (tmp_path / "grammars").glob("test-*.json")
    again = load_or_build_grammar(home, "en", Words(), "test", tmp_path)
    assert again == first
    renamed = home.model_copy(
        update={"areas": tuple(a.model_copy(update={"name": "Den"}) for a in home.areas)}
    )
    other = load_or_build_grammar(renamed, "en", Words(), "test", tmp_path)
    assert other.key != first.key and "den" in other.words
    cached.write_text("{not json", encoding="utf-8")
    rebuilt = load_or_build_grammar(home, "en", Words(), "test", tmp_path)
    assert rebuilt == first
    assert json.loads(cached.read_text(encoding="utf-8"))["key"] == first.key
