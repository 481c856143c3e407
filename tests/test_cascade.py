"""The cascade's rules between tiers, with the shipped models on the home of `_fixtures.yaml`."""

from __future__ import annotations

import pytest
from conftest import EVAL_FIXTURES

from edge_runtime.home import load_home
from edge_runtime.messages import TextRequest
from edge_runtime.nlu.base import NluContext
from edge_runtime.nlu.cascade import Cascade, build_cascade
from edge_runtime.profiles import load_profiles

THRESHOLD = 0.9


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> Cascade:
    cache = tmp_path_factory.mktemp("cache")
    context = NluContext(load_home(EVAL_FIXTURES), "en", "n1", load_profiles()["x86-64"], cache)
    return build_cascade(context, ["rules", "encoder", "generator"], THRESHOLD)


@pytest.mark.parametrize(
    ("text", "area"),
    [
        ("could you have rover vacuum the kitchen", "Kitchen"),
        ("please have rover vacuum the office", "Office"),
    ],
)
def test_the_generator_backs_an_unsure_reading_that_names_everything_said(
    cascade: Cascade, text: str, area: str
) -> None:
    """The encoder reads Rover and the room but is unsure; the generator is sure of the
    intent but drops Rover. Together: the intent both read, with the slots that leave
    nothing out."""
    request = TextRequest(text)
    encoder, generator = (t for t in cascade.tiers if t.name in ("encoder", "generator"))
    unsure = encoder.recognize(request)
    assert unsure is not None and unsure.confidence < THRESHOLD
    sure = generator.recognize_all(request)  # type: ignore[attr-defined]
    assert [i.name for i in sure] == ["HassVacuumCleanArea"] and "name" not in sure[0].slots

    answer = cascade.best(request)

    assert answer is not None
    assert (answer.name, answer.slot_values()) == (
        "HassVacuumCleanArea",
        {"name": "Rover", "area": area},
    )
    assert answer.confidence >= THRESHOLD
