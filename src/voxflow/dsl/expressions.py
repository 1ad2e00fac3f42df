"""CEL conditions (`validate`, branch and route `when`): compiled once, evaluated every turn.

Built on `common-expression-language` (cel-rust), which holds the GIL while it runs and has no
cost limit, so what an author may write and what a condition may read are both bounded here.

Rules:

- Unset variables. A variable that is None, or missing from the values (never set), is CEL
  `null`: `guest_name == null` and `has(order.status)` work. An operation that fails on it
  (`party_size > 8` while party_size is unset) raises ExpressionError "party_size is not set",
  never a silent false.
- Results. A condition must produce true or false; anything else is an ExpressionError. Every
  runtime failure (no such overload, missing key, index out of range, division by zero,
  overflow) is an ExpressionError without position, which the engine turns into the error path.
- Numbers. CEL compares int with double (`9 > 8.5`) but does not mix them in arithmetic
  (`1 + 2.5` fails: write `double(x) + 2.5`). Dates and times are ISO strings, compared as text.
- Functions. Only cel-rust's native library (`size`, `contains`, `startsWith`, `endsWith`,
  `matches`, `has`, `int`/`double`/`string`/..., `timestamp`, `duration`); the Python
  `cel.stdlib` extras are not registered (`lists.range` would be an amplifier).

Caps (the cost measured with cel-rust 0.10 on a 10,000-item list is in brackets):

- source at most 2,048 characters (an ~80 KB expression overflows the native stack);
- at most 64 operators and calls, of which 16 `+` (each `s + s` copies its operands);
- `map()` and `filter()` are refused: cel-rust builds their result in quadratic time [2 s];
- `all`/`exists`/`exists_one` may not nest [20 s], their body may read only its own loop
  variable and constants (`x.all(a, a in x)` is quadratic) [7 s] and has at most 16 operators;
- `matches()` takes a string literal pattern, is refused inside loops (cel-rust rebuilds the
  regex on every call), is used at most 4 times, and a pattern taking over 2 ms to build is
  refused;
- values read: integers within signed 64 bits (cel-rust silently turns larger ones into uint
  or double), lists and objects up to 10,000 items, strings up to 100,000 characters, 100,000
  items and 1,000,000 characters in all, nested at most 32 deep.

Within the source cap the native parser needs about 1 MB of thread stack (glibc gives 8 MB).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import cel
from pydantic import JsonValue

MAX_SOURCE_CHARS = 2_048
MAX_OPERATIONS = 64
MAX_ADDITIONS = 16
MAX_LOOP_BODY_OPERATIONS = 16
MAX_REGEX_CALLS = 4
MAX_REGEX_BUILD_SECONDS = 0.002
MAX_COLLECTION_ITEMS = 10_000
MAX_STRING_CHARS = 100_000
MAX_TOTAL_ITEMS = 100_000
MAX_TOTAL_CHARS = 1_000_000
MAX_DEPTH = 32

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_LOOP_MACROS = frozenset({"all", "exists", "exists_one", "existsOne"})
_LIST_MACROS = frozenset({"map", "filter"})
# Names CEL itself resolves; a workflow variable of the same name shadows them, as in CEL.
_TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"}
)
_KEYWORDS = frozenset({"true", "false", "null", "in"})
_OPERATORS = frozenset(
    {"+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "!", "?", "in"}
)

# Raw strings (r'...') have no escapes: r'\' is one backslash, so they need their own rule.
_Q3, _QQ3 = "'''", '"""'
_RAW_STRING = rf"""(?:[rR][bB]?|[bB][rR])(?:{_Q3}.*?{_Q3}|{_QQ3}.*?{_QQ3}|'[^'\n]*'|"[^"\n]*")"""
_STRING = (
    rf"""[bB]?(?:{_Q3}(?:\\.|[^\\])*?{_Q3}|{_QQ3}(?:\\.|[^\\])*?{_QQ3}"""
    r"""|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")"""
)
_NUMBER = (
    r"0[xX][0-9a-fA-F]+[uU]?|\d+\.\d+(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?"
    r"|\d+[eE][+-]?\d+|\d+[uU]?"
)
_TOKEN = re.compile(
    rf"(?P<space>\s+|//[^\n]*)|(?P<string>{_RAW_STRING}|{_STRING})|(?P<number>{_NUMBER})"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>==|!=|<=|>=|&&|\|\||.)",
    re.DOTALL,
)
_SYNTAX_ERROR = re.compile(r"<input>:(\d+):(\d+): (.*)")


class ExpressionError(Exception):
    """A condition that does not compile or cannot be evaluated; position is 1-based."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(where + message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Condition:
    """A compiled CEL condition; build it with `compile_condition`."""

    source: str
    variables: frozenset[str]
    _program: cel.Program = field(repr=False, compare=False)
    _type_names: frozenset[str] = field(repr=False, compare=False, default=frozenset())

    def evaluate(self, values: Mapping[str, JsonValue]) -> bool:
        """Whether the condition holds; raises ExpressionError for anything else."""
        context: dict[str, JsonValue] = {}
        budget = _Budget()
        for name in self.variables:
            context[name] = budget.check(name, values.get(name))
        for name in self._type_names & values.keys():
            context[name] = budget.check(name, values[name])
        try:
            result = self._program.execute(context)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # includes pyo3's PanicException, a BaseException
            raise ExpressionError(self._runtime_message(exc, context)) from None
        if not isinstance(result, bool):
            raise ExpressionError(f"condition must be true or false, got {_describe(result)}")
        return result

    def _runtime_message(self, exc: BaseException, context: Mapping[str, JsonValue]) -> str:
        if isinstance(exc, ZeroDivisionError):
            return "division by zero"
        if isinstance(exc, KeyError):
            return f"no such key: {exc.args[0] if exc.args else '?'}"
        # What null makes fail: no such overload (TypeError), no `size` on null (RuntimeError).
        unset = sorted(name for name in self.variables if context.get(name) is None)
        if unset and isinstance(exc, TypeError | RuntimeError):
            return f"{', '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set"
        return _first_sentence(str(exc)) or type(exc).__name__


# Saves, lint, publish and the loader compile the same texts again and again, and a compiled
# one is immutable: keep the recent ones (failures are not cached: they raise).
@functools.lru_cache(maxsize=4096)
def compile_condition(source: str) -> Condition:
    """Compile a CEL condition once; raises ExpressionError, with the position when known."""
    if len(source) > MAX_SOURCE_CHARS:
        raise ExpressionError(
            f"condition is {len(source)} characters long; at most {MAX_SOURCE_CHARS} are allowed"
        )
    try:
        program = cel.compile(source)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        raise _syntax_error(str(exc)) from None
    shape = _Shape(source)
    names = frozenset(program.variables())
    variables = frozenset(name for name in names - _TYPE_NAMES if name in shape.free_names)
    return Condition(source, variables, program, names & _TYPE_NAMES)


def _syntax_error(text: str) -> ExpressionError:
    found = _SYNTAX_ERROR.search(text)
    if found is None:
        return ExpressionError(_first_sentence(text) or "invalid condition")
    reason = found.group(3)
    inner = re.search(r'msg: "([^"]*)"', reason)  # cel-rust's debug form of a ParseError
    if inner is not None:
        reason = inner.group(1)
    reason = re.sub(r"^Syntax error: ", "", reason)
    reason = re.sub(r" expecting (\{[^}]*\}|<EOF>)", "", reason)
    reason = re.sub(
        r"^(mismatched input|extraneous input|no viable alternative at input)", "unexpected", reason
    )
    reason = reason.replace("token recognition error at:", "unexpected character")
    reason = reason.replace("'<EOF>'", "end of condition")
    reason = reason[:1].lower() + reason[1:]
    return ExpressionError(reason, int(found.group(1)), int(found.group(2)))


def _first_sentence(text: str) -> str:
    """cel-rust messages are a sentence, then advice about CEL at large: keep the sentence."""
    sentence = text.split("\n", 1)[0].split(". ", 1)[0].rstrip(".:")
    return sentence[:1].lower() + sentence[1:]


def _describe(value: object) -> str:
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Budget:
    """Running totals over the values one evaluation passes to CEL."""

    def __init__(self) -> None:
        self.items = 0
        self.chars = 0

    def check(self, name: str, value: JsonValue) -> JsonValue:
        """The value itself, once it is known to be a JSON value within the caps."""
        # Iterative, so a deeply nested value cannot exhaust the Python stack either.
        stack: list[tuple[object, int]] = [(value, 0)]
        while stack:
            item, depth = stack.pop()
            self.items += 1
            if item is None or isinstance(item, bool | float):
                pass
            elif isinstance(item, int):
                if not _INT64_MIN <= item <= _INT64_MAX:
                    raise ExpressionError(f"{name} holds a number beyond 64 bits")
            elif isinstance(item, str):
                self.chars += len(item)
                if len(item) > MAX_STRING_CHARS:
                    raise ExpressionError(
                        f"{name} holds {len(item)} characters of text; "
                        f"conditions read at most {MAX_STRING_CHARS}"
                    )
            elif isinstance(item, list | dict):
                if depth >= MAX_DEPTH:
                    raise ExpressionError(f"{name} is nested more than {MAX_DEPTH} levels deep")
                if len(item) > MAX_COLLECTION_ITEMS:
                    raise ExpressionError(
                        f"{name} holds {len(item)} items; "
                        f"conditions read at most {MAX_COLLECTION_ITEMS}"
                    )
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
                for key in item if isinstance(item, dict) else ():
                    if not isinstance(key, str):
                        raise ExpressionError(f"{name} has a key that is not text")
                    self.chars += len(key)
            else:
                raise ExpressionError(f"{name} holds a {type(item).__name__}, not a JSON value")
            if self.items > MAX_TOTAL_ITEMS or self.chars > MAX_TOTAL_CHARS:
                raise ExpressionError(
                    f"the values this condition reads exceed {MAX_TOTAL_ITEMS} items "
                    f"or {MAX_TOTAL_CHARS} characters"
                )
        return value


@dataclass
class _Token:
    kind: str  # a group name of _TOKEN
    text: str
    offset: int


@dataclass
class _Loop:
    """An open all/exists/exists_one call: its loop variable and how much its body does."""

    variable: str
    depth: int  # bracket depth inside its "("
    operations: int = 0


class _Shape:
    """Checks the caps above on the tokens of an expression cel-rust has already parsed.

    Also finds the names read outside loop bodies (`free_names`): cel-rust's `variables()`
    lists loop variables too.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = [
            _Token(match.lastgroup or "punct", match.group(), match.start())
            for match in _TOKEN.finditer(source)
            if match.lastgroup != "space"
        ]
        self.free_names: set[str] = set()
        self.operations = self.additions = self.regex_calls = 0
        for token in self.tokens:
            if token.kind == "string":
                self._check_literal(token)
        self._check()

    def _error(self, message: str, token: _Token) -> ExpressionError:
        line = self.source.count("\n", 0, token.offset) + 1
        column = token.offset - (self.source.rfind("\n", 0, token.offset) + 1) + 1
        return ExpressionError(message, line, column)

    def _check_literal(self, token: _Token) -> None:
        """Guard the scanner itself: a misread string could hide names from the checks."""
        try:
            value = cel.evaluate(token.text)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            value = None
        if not isinstance(value, str | bytes):
            raise self._error("this condition is written in a way that cannot be checked", token)

    def _check(self) -> None:
        loop: _Loop | None = None
        depth = 0
        tokens = self.tokens
        for index, token in enumerate(tokens):
            before = tokens[index - 1].text if index > 0 else ""
            after = tokens[index + 1].text if index + 1 < len(tokens) else ""
            if token.text in ("(", "[", "{"):
                depth += 1
            elif token.text in (")", "]", "}"):
                depth -= 1
                if loop is not None and depth < loop.depth:
                    loop = None
            elif token.text in _OPERATORS:
                self._count(token, loop)
            if token.kind != "name" or token.text in _KEYWORDS:
                continue
            if after == "(":
                self._count(token, loop)
                if before == "." and token.text in _LIST_MACROS:
                    raise self._error(
                        f"{token.text}() is not supported in conditions; "
                        "use all(), exists() or exists_one()",
                        token,
                    )
                if before == "." and token.text in _LOOP_MACROS:
                    if loop is not None:
                        raise self._error(f"{token.text}() cannot be nested in a loop", token)
                    variable = tokens[index + 2].text if index + 2 < len(tokens) else ""
                    loop = _Loop(variable, depth + 1)
                if token.text == "matches":
                    self._check_regex(index, loop)
                continue
            if before == "." or self._is_loop_variable(index):
                continue
            if loop is None:
                self.free_names.add(token.text)
            elif token.text != loop.variable and token.text not in _TYPE_NAMES:
                raise self._error(
                    f"a loop body may use only its variable {loop.variable!r} and constants, "
                    f"not {token.text!r}",
                    token,
                )

    def _count(self, token: _Token, loop: _Loop | None) -> None:
        self.operations += 1
        self.additions += token.text == "+"
        if self.operations > MAX_OPERATIONS:
            raise self._error(f"more than {MAX_OPERATIONS} operations in one condition", token)
        if self.additions > MAX_ADDITIONS:
            raise self._error(f"more than {MAX_ADDITIONS} '+' in one condition", token)
        if loop is not None:
            loop.operations += 1
            if loop.operations > MAX_LOOP_BODY_OPERATIONS:
                message = f"more than {MAX_LOOP_BODY_OPERATIONS} operations in a loop body"
                raise self._error(message, token)

    def _is_loop_variable(self, index: int) -> bool:
        """Whether tokens[index] is the `a` of `.all(a, ...)`."""
        tokens = self.tokens
        return (
            index >= 3
            and tokens[index - 1].text == "("
            and tokens[index - 2].text in _LOOP_MACROS
            and tokens[index - 3].text == "."
        )

    def _check_regex(self, index: int, loop: _Loop | None) -> None:
        token = self.tokens[index]
        if loop is not None:
            raise self._error("matches() cannot be used inside a loop", token)
        self.regex_calls += 1
        if self.regex_calls > MAX_REGEX_CALLS:
            raise self._error(f"matches() is used more than {MAX_REGEX_CALLS} times", token)
        pattern = self._last_argument(index + 1)
        if pattern is None or pattern.kind != "string":
            raise self._error("the pattern of matches() must be a string literal", token)
        try:
            fastest = min(_regex_build_seconds(pattern.text) for _ in range(3))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # an invalid pattern
            raise self._error(_first_sentence(str(exc)), pattern) from None
        if fastest > MAX_REGEX_BUILD_SECONDS:
            raise self._error("the pattern of matches() is too complex", pattern)

    def _last_argument(self, open_index: int) -> _Token | None:
        """The last argument of the call opened at tokens[open_index], if one token long."""
        nesting, start = 0, open_index + 1
        for index in range(open_index, len(self.tokens)):
            text = self.tokens[index].text
            nesting += text in ("(", "[", "{")
            nesting -= text in (")", "]", "}")
            if nesting == 1 and text == ",":
                start = index + 1
            if nesting == 0:
                return self.tokens[start] if index == start + 1 else None
        return None


def _regex_build_seconds(literal: str) -> float:
    started = time.perf_counter()
    cel.evaluate(f"''.matches({literal})")
    return time.perf_counter() - started
