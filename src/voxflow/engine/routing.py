"""Choosing a route out of a node: example matching offline, gated choices with a model.

Offline, an utterance matches a route when it resembles one of the route's `examples` (or its
intent name) closely enough: either as a whole (word order ignored) or because the example's
words appear, in order, inside what the caller said ("yes please" takes the route whose example
is "yes", "yesterday" does not). Scores run 0-100; the workflow's `match_threshold` decides.

Whoever picks the route (example matching or the model), it is only taken when its `when`
guard holds and every variable in `requires` is set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import JsonValue
from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from voxflow.dsl.expressions import Condition, ExpressionError
from voxflow.dsl.schema import Route

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]+")


@dataclass(frozen=True)
class Candidate:
    """A route that may be taken from where the call is, with its compiled guard."""

    route: Route
    pointer: str  # of the route in the document, for error reports
    guard: Condition | None

    @property
    def function_name(self) -> str:
        """The name the model calls to take this route (unique per node: see `route_functions`)."""
        base = self.route.intent or self.route.to
        return "go_" + (_NOT_NAME.sub("_", base).strip("_") or "route")[:58]


@dataclass(frozen=True)
class Blocked:
    """The route was chosen but may not be taken yet."""

    missing: tuple[str, ...] = ()
    guard_failed: bool = False
    error: str | None = None

    def explain(self) -> str:
        if self.error:
            return f"This route cannot be checked right now ({self.error})."
        if self.missing:
            return "Not yet: first find out " + ", ".join(self.missing) + "."
        return "Not allowed here: its condition does not hold."


def best_example_match(
    utterance: str, candidates: Sequence[Candidate], threshold: int
) -> Candidate | None:
    """The candidate whose examples best match `utterance`, if any reaches `threshold`."""
    words = default_process(utterance).split()
    if not words:
        return None
    best: tuple[float, int] = (0.0, -1)
    for position, candidate in enumerate(candidates):
        score = max((_score(words, phrase) for phrase in _phrases(candidate.route)), default=0.0)
        if score > best[0]:
            best = (score, position)
    score, position = best
    return candidates[position] if position >= 0 and score >= threshold else None


def _phrases(route: Route) -> list[str]:
    phrases = list(route.examples)
    if route.intent:
        phrases.append(route.intent.replace("_", " "))
    return phrases


def _score(words: list[str], phrase: str) -> float:
    example = default_process(phrase).split()
    if not example:
        return 0.0
    whole = fuzz.token_sort_ratio(" ".join(words), " ".join(example))
    if len(example) > len(words):
        return whole
    # The example inside the utterance, compared window by window at word granularity, so a
    # short example cannot match part of a longer word.
    size = len(example)
    target = " ".join(example)
    inside = max(
        fuzz.ratio(" ".join(words[start : start + size]), target)
        for start in range(len(words) - size + 1)
    )
    return max(whole, inside)


def check_route(candidate: Candidate, variables: Mapping[str, JsonValue]) -> Blocked | None:
    """None when the route may be taken now; otherwise why not."""
    missing = tuple(name for name in candidate.route.requires if variables.get(name) is None)
    if missing:
        return Blocked(missing=missing)
    if candidate.guard is None:
        return None
    try:
        holds = candidate.guard.evaluate(variables)
    except ExpressionError as exc:
        return Blocked(error=exc.message)
    return None if holds else Blocked(guard_failed=True)


def route_functions(candidates: Sequence[Candidate]) -> dict[str, Candidate]:
    """Function name → candidate, names made unique in order of appearance."""
    named: dict[str, Candidate] = {}
    for candidate in candidates:
        name, suffix = candidate.function_name, 2
        while name in named:
            name, suffix = f"{candidate.function_name}_{suffix}", suffix + 1
        named[name] = candidate
    return named
