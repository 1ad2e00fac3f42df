"""Turn JSON or YAML text into a validated `WorkflowDocument`, and back into canonical JSON.

Every failure is a `DocumentInvalid` carrying findings whose pointers address the document as the
author wrote it, so the API and the editor can highlight the exact field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from voxflow.dsl.findings import Finding, json_pointer
from voxflow.dsl.schema import NODE_TYPES, WorkflowDocument

JSON_MEDIA_TYPES = frozenset({"application/json"})
YAML_MEDIA_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})

# Bounds on the decoded value, checked before validation: YAML aliases let a few hundred bytes
# expand into billions of values, and deep nesting exhausts the stack.
MAX_VALUES = 100_000
MAX_DEPTH = 64

_NODE_TYPES = frozenset(NODE_TYPES)
_UNION_TAG_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})
_KIND_NAMES: dict[type, str] = {
    type(None): "an empty document",
    list: "a list",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
}


class DocumentInvalid(Exception):
    """The document cannot be read or does not match the schema."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        first = self.findings[0].message if self.findings else "invalid document"
        more = len(self.findings) - 1
        super().__init__(f"{first} (and {more} more)" if more > 0 else first)


class UnsupportedMediaType(ValueError):
    """The media type is neither JSON nor YAML."""


class DuplicateKey(ValueError):
    """Both JSON and YAML parsers keep the last of two equal keys; an author meant one of them."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"duplicate key {key!r}")
        result[key] = value
    return result


class _UniqueKeySafeLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) or key is None:
                if key in seen:
                    mark = key_node.start_mark
                    raise DuplicateKey(
                        f"duplicate key {key!r} at line {mark.line + 1}, column {mark.column + 1}"
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_text(text: str | bytes, media_type: str) -> object:
    """Decode JSON or YAML text into plain Python values; the top level must be a mapping."""
    kind = _media_kind(media_type)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise _syntax(f"not valid UTF-8 at byte {exc.start}") from None
    try:
        if kind == "json":
            value = json.loads(text, object_pairs_hook=_unique_keys)
        else:
            value = yaml.load(text, Loader=_UniqueKeySafeLoader)  # noqa: S506 - a SafeLoader
    except DuplicateKey as exc:
        raise _syntax(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise _syntax(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax(_yaml_message(exc)) from None
    except RecursionError:
        raise _syntax("the document is nested too deeply") from None
    except Exception as exc:
        # PyYAML's constructors fail with ValueError, IndexError, AttributeError… on scalars that
        # look like, but are not, timestamps or numbers (`2024-13-01`, `!!int ""`); any input
        # must end as findings, never as a server error.
        raise _syntax(f"unreadable value: {exc}") from None
    if not isinstance(value, dict):
        found = _KIND_NAMES.get(type(value), type(value).__name__)
        raise DocumentInvalid(
            [_error("not_a_mapping", f"the document must be a mapping, found {found}", "")]
        )
    return value


def parse_document(data: object) -> WorkflowDocument:
    """Validate plain Python values (as decoded from JSON or YAML) into a document."""
    _check_size(data)
    try:
        return WorkflowDocument.model_validate(data)
    except ValidationError as exc:
        findings = [_finding_from_error(error) for error in exc.errors(include_url=False)]
        raise DocumentInvalid(findings) from None


def load_document(text: str | bytes, media_type: str) -> WorkflowDocument:
    """`load_text` then `parse_document`."""
    return parse_document(load_text(text, media_type))


def dump_canonical(doc: WorkflowDocument) -> str:
    """Serialise deterministically: equal documents give equal strings (and hashes)."""
    data = doc.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def document_sha256(canonical: str) -> str:
    """Hex SHA-256 of a canonical dump, used as the content hash of a version."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _media_kind(media_type: str) -> str:
    essence = media_type.split(";", 1)[0].strip().lower()
    if essence in JSON_MEDIA_TYPES or essence.endswith("+json"):
        return "json"
    if essence in YAML_MEDIA_TYPES or essence.endswith("+yaml"):
        return "yaml"
    raise UnsupportedMediaType(f"unsupported media type {media_type!r}; use JSON or YAML")


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    message = exc.problem or "invalid YAML"
    if exc.problem_mark is not None:
        mark = exc.problem_mark
        message += f" at line {mark.line + 1}, column {mark.column + 1}"
    if exc.context:
        message += f" ({exc.context}"
        if exc.context_mark is not None:
            mark = exc.context_mark
            message += f" started at line {mark.line + 1}, column {mark.column + 1}"
        message += ")"
    return message


def _check_size(data: object) -> None:
    count = 0
    stack: list[tuple[object, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise _too_large(f"the document holds more than {MAX_VALUES} values")
        if depth > MAX_DEPTH:
            raise _too_large(f"the document is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)


def _finding_from_error(error: ErrorDetails) -> Finding:
    loc = list(error["loc"])
    # Pydantic inserts the union tag into the location (`nodes.2.collect.variable`); the author's
    # document has no such level.
    if len(loc) >= 3 and loc[0] == "nodes" and isinstance(loc[1], int) and loc[2] in _NODE_TYPES:
        del loc[2]
    if error["type"] in _UNION_TAG_ERRORS:
        loc.append("type")
    if loc and loc[-1] == "[key]":
        del loc[-1]
    message = error["msg"]
    if error["type"] == "string_type" and isinstance(error.get("input"), bool | int | float):
        message += " (unquoted yes/no/on/off and numbers are not text in YAML: quote them)"
    return _error(error["type"], message, json_pointer(*loc))


def _error(code: str, message: str, pointer: str) -> Finding:
    return Finding(severity="error", code=code, message=message, pointer=pointer)


def _syntax(message: str) -> DocumentInvalid:
    return DocumentInvalid([_error("syntax", message, "")])


def _too_large(message: str) -> DocumentInvalid:
    return DocumentInvalid([_error("too_large", message, "")])
