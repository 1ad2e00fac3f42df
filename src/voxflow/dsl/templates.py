"""Jinja2 text (what the agent says, tool arguments): compiled once, rendered every turn.

Rules:

- Sandboxed: `jinja2.sandbox.ImmutableSandboxedEnvironment`, so templates cannot reach Python
  internals (`''.__class__`, `cycler.__init__.__globals__` fail with a TemplateError rather than
  rendering as empty text) nor change the values they are given (`order.items.pop()`).
- Speech, not HTML: no autoescaping; a trailing newline is dropped.
- Unset variables: None values are left out of the context, and a missing name renders as
  empty text (`ChainableUndefined`, so `order.status` with `order` unset is empty too), which
  lets `{{ guest_name | default('there') }}` apply. A None nested in an object renders empty.
- No `include`/`extends`/`import` (there is nothing to load) and no `lipsum`.
- Every render-time failure is a TemplateError with the template line when known.

Caps, each a TemplateError as soon as it is hit:

- output at most MAX_OUTPUT_CHARS (10,000) characters and MAX_RENDER_SECONDS (50 ms), checked
  after every output chunk and, since loops and macros can run long without writing, on each
  loop iteration, call and operator (one step cannot be interrupted: worst seen about 90 ms);
- no value the template builds (operator, `~`, literal, call or filter result) over
  MAX_VALUE_CHARS (100,000) characters or items, counted as printing would see them, and no
  integer over MAX_INT_BITS (10,000) bits. What one step could blow up is refused before it
  runs: `"x" * n`, `**`, `%`/`format` padding, `center`/`indent`/`ljust`/`zfill`/`expandtabs`
  widths, `replace`, `join` separators, `wordwrap`, `slice`, `batch`, `tojson` indent, and
  `sum` of lists (quadratic);
- `range()` of at most MAX_RANGE (10,000) numbers; source at most MAX_SOURCE_CHARS (20,000).

`variables` are the undeclared names minus the globals (`range`, `dict`, `cycler`, ...).
`secrets` are the NAMEs of `secrets.NAME` (or `secrets["NAME"]`): only tool arguments may read
them, and only in that form, so the runtime knows which vault secrets a call needs.
"""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer
from pydantic import JsonValue

MAX_OUTPUT_CHARS = 10_000
MAX_RENDER_SECONDS = 0.05
MAX_VALUE_CHARS = 100_000
MAX_INT_BITS = 10_000
MAX_WIDTH = 1_000
MAX_JSON_INDENT = 8
MAX_RANGE = 10_000
MAX_SOURCE_CHARS = 20_000

_DEADLINE: ContextVar[float] = ContextVar("voxflow_template_deadline", default=float("inf"))
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_WIDTH_DIGITS = re.compile(r"\d+")
_UNSUPPORTED = {
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
}


class TemplateError(Exception):
    """A template that does not compile or cannot be rendered; line is 1-based."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.message = message
        self.line = line


class _TooCostly(SecurityError):
    """A cap was hit while rendering."""


@dataclass(frozen=True)
class Template:
    """A compiled template; build it with `compile_template`."""

    source: str
    variables: frozenset[str]
    _template: jinja2.Template = field(repr=False, compare=False)
    secrets: frozenset[str] = frozenset()
    # `secrets` read other than as `secrets.NAME` (whole, or by a computed key): a lint error.
    secrets_misused: bool = False

    def render(self, values: Mapping[str, JsonValue]) -> str:
        """The text; raises TemplateError, never anything else."""
        context = {name: value for name, value in values.items() if value is not None}
        deadline = time.perf_counter() + MAX_RENDER_SECONDS
        token = _DEADLINE.set(deadline)
        chunks: list[str] = []
        length = 0
        stream = cast(Generator[str, None, None], self._template.generate(context))
        try:
            for chunk in stream:
                chunks.append(chunk)
                length += len(chunk)
                if length > MAX_OUTPUT_CHARS:
                    raise _TooCostly(f"the text is longer than {MAX_OUTPUT_CHARS} characters")
                _tick()
        except Exception as exc:  # a template can raise nearly anything; none may escape
            raise TemplateError(_message(exc), _template_line(exc)) from None
        finally:
            stream.close()
            _DEADLINE.reset(token)
        return "".join(chunks)


# Saves, lint, publish and the loader compile the same texts again and again, and a compiled
# one is immutable: keep the recent ones (failures are not cached: they raise).
@functools.lru_cache(maxsize=4096)
def compile_template(source: str) -> Template:
    """Compile a template once; raises TemplateError (with the line of a syntax error)."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(f"template is longer than {MAX_SOURCE_CHARS} characters")
    try:
        tree = _ENVIRONMENT.parse(source)
        for kind, tag in _UNSUPPORTED.items():
            found = tree.find(kind)
            if found is not None:
                raise TemplateError(f"{tag} is not supported", found.lineno)
        variables = frozenset(meta.find_undeclared_variables(tree)) - _ENVIRONMENT.globals.keys()
        secrets, secrets_misused = _secret_references(tree)
        _Guard().visit(tree)
        code = _ENVIRONMENT.compile(tree)
        compiled = _ENVIRONMENT.template_class.from_code(
            _ENVIRONMENT, code, _ENVIRONMENT.make_globals(None)
        )
    except TemplateError:
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(exc.message or "syntax error", exc.lineno) from None
    except Exception as exc:  # e.g. RecursionError on absurd nesting
        raise TemplateError(f"template cannot be compiled ({type(exc).__name__})") from None
    return Template(source, variables, compiled, secrets, secrets_misused)


SECRETS = "secrets"


def _secret_references(tree: nodes.Template) -> tuple[frozenset[str], bool]:
    names: set[str] = set()
    plain = 0
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        if not (isinstance(node.node, nodes.Name) and node.node.name == SECRETS):
            continue
        if isinstance(node, nodes.Getattr):
            names.add(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            names.add(node.arg.value)
        else:
            continue
        plain += 1
    reads = sum(1 for node in tree.find_all(nodes.Name) if node.name == SECRETS)
    return frozenset(names), reads != plain


def _message(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "too much recursion"
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OverflowError):
        return "a number is out of range"
    text = str(exc).split("\n", 1)[0]
    return text or type(exc).__name__


def _template_line(exc: BaseException) -> int | None:
    """The template line Jinja's rewritten traceback points at, if any."""
    line = None
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _tick() -> None:
    if time.perf_counter() > _DEADLINE.get():
        raise _TooCostly(f"rendering took longer than {MAX_RENDER_SECONDS * 1000:g} ms")


def _check_size(size: int) -> None:
    if size > MAX_VALUE_CHARS:
        raise _TooCostly(f"a value would hold more than {MAX_VALUE_CHARS} characters or items")


def _check_width(width: object, limit: int = MAX_WIDTH) -> None:
    size = len(width) if isinstance(width, str) else width
    if isinstance(size, int) and size > limit:
        raise _TooCostly(f"a width or count of {size} is over the limit of {limit}")


def _weight(value: Any) -> int:
    """Characters and items as printing would see them, shared parts counted each time.

    `{% set ns.l = [ns.l, ns.l] %}` in a loop doubles the printed size at each step while the
    memory stays small, so the walk stops as soon as the total is over the cap.
    """
    total, stack = 0, [value]
    while stack and total <= MAX_VALUE_CHARS:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, list | tuple):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, Namespace):
            # Namespace hides its attributes from getattr; its __dict__ holds the one dict.
            stack.extend(object.__getattribute__(item, "__dict__").values())
        else:
            total += 1
    return total


def _checked(value: Any) -> Any:
    if isinstance(value, str):
        _check_size(len(value))
    elif isinstance(value, list | tuple | dict | Namespace):
        _check_size(_weight(value))
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _TooCostly(f"a number of more than {MAX_INT_BITS} bits")
    return value


def _check_percent_format(template: object) -> None:
    if not isinstance(template, str):
        return
    for found in _PERCENT_SPEC.finditer(template):
        for width in found.groups():
            if width == "*":
                raise _TooCostly("'*' widths are not supported")
            if width:
                _check_width(int(width))


def _check_format_method(template: str) -> None:
    for _, _, spec, _ in string.Formatter().parse(template):
        if spec and "{" in spec:
            raise _TooCostly("nested format fields are not supported")
        for digits in _WIDTH_DIGITS.findall(spec or ""):
            _check_width(int(digits))


def _check_replace(text: object, old: object, new: object, count: object = None) -> None:
    text, old, new = str(text), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    _check_size(len(text) + hits * max(0, len(new) - len(old)))


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse what one step would blow up; `+` and int `*` at most double, checked after."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                _check_size(len(seq) * times)
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if abs(left) > 1 and right > 0 and left.bit_length() * right > MAX_INT_BITS:
            raise _TooCostly(f"a number of more than {MAX_INT_BITS} bits")
    elif operator == "%":
        _check_percent_format(left)


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _guard_filter(
    function: Callable[..., Any], check: Callable[[tuple[Any, ...], dict[str, Any]], None]
) -> Callable[..., Any]:
    """The filter, with `check` run on its arguments (after Jinja's context) beforehand."""
    skip = 0 if getattr(function, "jinja_pass_arg", None) is None else 1

    @functools.wraps(function)  # keeps `jinja_pass_arg`
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(args[skip:], kwargs)
        return function(*args, **kwargs)

    return guarded


def _check_sum_start(start: object) -> None:
    # Summing lists copies the growing total for every item: quadratic.
    if start is not None and not isinstance(start, int | float):
        raise _TooCostly("sum() of anything but numbers is not supported")


def _check_indent(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = _arg(args, kwargs, 1, "width")
    _check_width(width)
    text = str(args[0]) if args else ""
    per_line = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    _check_size(len(text) + per_line * (text.count("\n") + 1))


def _check_wordwrap(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    text = str(args[0]) if args else ""
    width = _arg(args, kwargs, 1, "width")
    wrap = _arg(args, kwargs, 3, "wrapstring") or "\n"
    lines = len(text) // max(width, 1) + 1 if isinstance(width, int) else len(text)
    _check_size(len(text) + lines * len(str(wrap)))


_FILTER_CHECKS: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], None]] = {
    "center": lambda args, kwargs: _check_width(_arg(args, kwargs, 1, "width")),
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "format": lambda args, kwargs: _check_percent_format(args[0] if args else None),
    "replace": lambda args, kwargs: _check_replace(
        _arg(args, kwargs, 0, "s"),
        _arg(args, kwargs, 1, "old"),
        _arg(args, kwargs, 2, "new"),
        _arg(args, kwargs, 3, "count"),
    ),
    "slice": lambda args, kwargs: _check_width(_arg(args, kwargs, 1, "slices")),
    "batch": lambda args, kwargs: _check_width(_arg(args, kwargs, 1, "linecount")),
    # Every line is indented by `indent` times its depth.
    "tojson": lambda args, kwargs: _check_width(_arg(args, kwargs, 1, "indent"), MAX_JSON_INDENT),
    # The separator is repeated between every two items.
    "join": lambda args, kwargs: _check_width(_arg(args, kwargs, 1, "d")),
    "sum": lambda args, kwargs: _check_sum_start(_arg(args, kwargs, 2, "start")),
}
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox with Voxflow's caps on operators, calls and loops."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator, left, right)
        return _checked(super().call_binop(context, operator, left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _tick()
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(obj, "__name__", "")
            if name in _WIDTH_METHODS:
                _check_width(_arg(args, kwargs, 0, "width"))
            elif name == "expandtabs":
                tab = _arg(args, kwargs, 0, "tabsize")
                _check_width(tab)
                _check_size(len(owner) + owner.count("\t") * (tab if isinstance(tab, int) else 8))
            elif name == "replace":
                old, new = _arg(args, kwargs, 0, "old"), _arg(args, kwargs, 1, "new")
                _check_replace(owner, old, new, _arg(args, kwargs, 2, "count"))
            elif name == "join":
                _check_width(owner)
            elif name in ("translate", "maketrans"):
                raise _TooCostly(f"str.{name} is not supported")
        return _checked(super().call(context, obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # Jinja resolves `'...'.format` at attribute access, so the padding is checked here.
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str) and getattr(value, "__name__", "") in ("format", "format_map"):
            _check_format_method(owner)
        return super().wrap_str_format(value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # Fail loudly: the default renders an escape attempt as empty text.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} is unsafe"
        )

    def voxflow_loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """What each `for` iterates: the items, with the deadline checked between them."""
        for item in iterable:
            _tick()
            yield item

    def voxflow_checked(self, value: Any) -> Any:
        return _checked(value)


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise _TooCostly(f"range() of more than {MAX_RANGE} numbers")
    return numbers


def _finalize(value: Any) -> Any:
    return "" if value is None else value


class _Guard(NodeTransformer):
    """Routes loops, `~`, literals and filters through the environment's checks."""

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        node = self.generic_visit(node)  # inside out, so every level gets checked
        if isinstance(node, nodes.For):
            node.iter = _environment_call("voxflow_loop", node.iter)
        elif (
            isinstance(node, nodes.Concat | nodes.List | nodes.Dict)
            # Not `{% for key, value in ... %}` targets, nor `{% filter %}` blocks (no node).
            or (isinstance(node, nodes.Tuple) and node.ctx == "load")
            or (isinstance(node, nodes.Filter) and node.node is not None)
        ):
            return _environment_call("voxflow_checked", node)
        return node


def _environment_call(method: str, argument: nodes.Node) -> nodes.Call:
    expression = cast(nodes.Expr, argument)
    call = nodes.Call(nodes.EnvironmentAttribute(method), [expression], [], None, None)
    call.set_lineno(argument.lineno)
    return call


def _make_environment() -> _Environment:
    environment = _Environment(
        autoescape=False,
        keep_trailing_newline=False,
        undefined=jinja2.ChainableUndefined,
        finalize=_finalize,
    )
    environment.globals.pop("lipsum", None)
    environment.globals["range"] = _range
    for name, check in _FILTER_CHECKS.items():
        environment.filters[name] = _guard_filter(environment.filters[name], check)
    return environment


_ENVIRONMENT = _make_environment()
