"""The scenario file format (`*.scenario.yaml`) as Pydantic models, and its loader.

A file holds one scenario, or several under `scenarios:` sharing one `workflow:`:

    workflow: ../luigis.yaml              # relative to the scenario file, or the document
                                          # itself inline (replays of logged calls do that)
    name: books a table for four
    variables: {}                         # initial values of declared variables
    clock: "2026-11-26T15:00:00+01:00"    # "now" for the whole call (default: DEFAULT_CLOCK)
    llm: [...]                            # ScriptedLLM replies for the model paths, offline
    steps:
      - expect: {say: "book a table"}     # a first step without `user` checks the greeting
      - user: four of us
        tools: {http.request: {result: {status: 200}}}
        expect: {vars: {party_size: 4}, node: ask_day, within_ms: 200, judge: "asks the day"}

`within_ms` and `judge` sit inside `expect` (as in DESIGN.md): they are expectations too.

Files are read as YAML 1.2 core schema, not PyYAML's YAML 1.1: `user: yes` is the word "yes",
`user: no` the word "no", `"19:30"` need not be quoted and `2026-11-27` stays the text a date
variable holds. Only `true`/`false` are booleans. Every problem is reported with the file and
a JSON pointer to the offending value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from voxflow.dsl.findings import Finding, json_pointer
from voxflow.providers.llm.scripted import ScriptedReply

SCENARIO_SUFFIXES = (".scenario.yaml", ".scenario.yml")
# A fixed "now" so that "tomorrow" and weekdays resolve the same on every run (a Monday).
DEFAULT_CLOCK = datetime.fromisoformat("2026-03-02T10:00:00+00:00")

Outcome = Literal["completed", "transferred", "failed", "timeout", "abandoned"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expect(_Model):
    """What must hold after a step. Every key is optional; none given checks nothing."""

    say: str | None = Field(None, description="Case-insensitive part of the agent's reply.")
    node: str | None = Field(None, description="Node waiting for the caller after the step.")
    vars: dict[str, JsonValue] | None = Field(None, description="Subset of the variables.")
    end: Outcome | None = Field(None, description="The call ended with this outcome.")
    tool: str | None = Field(None, description="A tool called during the step.")
    within_ms: float | None = Field(None, gt=0, description="Reply time budget, milliseconds.")
    judge: str | None = Field(
        None, min_length=1, description="A claim about the reply, checked by the configured LLM."
    )


class ToolStub(_Model):
    """The answer a tool gives in this step: exactly one of `result` and `error`."""

    result: JsonValue = Field(None, description="What the tool returns.")
    error: str | None = Field(None, description="Fail the call with this message.")
    delay_ms: float = Field(0, ge=0, le=60_000, description="How long the call takes.")

    @model_validator(mode="after")
    def _result_or_error(self) -> Self:
        given = {"result", "error"} & self.model_fields_set
        if len(given) != 1:
            raise ValueError("a tool stub needs exactly one of `result` and `error`")
        return self


class Step(_Model):
    user: str | None = Field(None, description="What the caller says.")
    tools: dict[str, ToolStub] = Field({}, description="Answers for the tools this step calls.")
    expect: Expect = Field(default_factory=Expect, description="What must hold afterwards.")

    @field_validator("user", mode="before")
    @classmethod
    def _numbers_are_words(cls, value: object) -> object:
        # `user: 4` means the caller said "4"; a boolean is left to fail (only true/false are).
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value


class Scenario(_Model):
    name: str = Field(min_length=1, max_length=300, description="Shown in the report.")
    variables: dict[str, JsonValue] = Field({}, description="Initial values of variables.")
    clock: AwareDatetime = Field(DEFAULT_CLOCK, description="The call's fixed 'now'.")
    llm: list[ScriptedReply] | None = Field(None, description="Scripted model replies.")
    steps: list[Step] = Field(min_length=1, description="Turns of the call, in order.")

    @field_validator("llm", mode="before")
    @classmethod
    def _bare_text_replies(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"text": item} if isinstance(item, str) else item for item in value]
        return value


WorkflowSource = Annotated[
    str | dict[str, Any],
    Field(description="Workflow file, relative to this one, or the workflow document inline."),
]


class _SingleFile(Scenario):
    workflow: WorkflowSource


class _ManyFile(_Model):
    workflow: WorkflowSource
    scenarios: list[Scenario] = Field(min_length=1, description="Scenarios on the workflow.")


@dataclass(frozen=True)
class ScenarioFile:
    path: Path
    workflow: Path | dict[str, Any]  # a file (resolved against this one's folder) or a document
    scenarios: list[Scenario]


class ScenarioFileInvalid(Exception):
    """The file cannot be read or does not follow the format; each finding has a pointer."""

    def __init__(self, path: Path, findings: list[Finding]) -> None:
        self.path = path
        self.findings = findings
        super().__init__("\n".join(f"{path}: {describe(f)}" for f in findings))


def describe(finding: Finding) -> str:
    return f"{finding.pointer or '(top)'}: {finding.message}"


def is_scenario_file(path: Path) -> bool:
    return path.name.endswith(SCENARIO_SUFFIXES)


def load_scenario_file(path: Path) -> ScenarioFile:
    """Read and validate a scenario file; raises ScenarioFileInvalid."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileInvalid(path, [_finding("unreadable", str(exc), "")]) from None
    data = _parse_yaml(path, text)
    model: type[_SingleFile | _ManyFile] = _ManyFile if "scenarios" in data else _SingleFile
    if model is _SingleFile and "name" not in data:
        data = {**data, "name": path.name.removesuffix(".yaml").removesuffix(".yml")}
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        many = model is _ManyFile
        raise ScenarioFileInvalid(path, [_from_error(e, data, many) for e in errors]) from None
    prefix: tuple[str, ...] = ()
    if isinstance(parsed, _ManyFile):
        scenarios, prefix = parsed.scenarios, ("scenarios",)
    else:
        # Attributes, not a dump: a dump would forget which stub fields the author set.
        fields = {name: getattr(parsed, name) for name in Scenario.model_fields}
        scenarios = [Scenario.model_validate(fields)]
    findings = _check_steps(scenarios, prefix)
    if findings:
        raise ScenarioFileInvalid(path, findings)
    workflow = parsed.workflow
    if isinstance(workflow, str):
        if not workflow.strip():
            raise ScenarioFileInvalid(path, [_finding("empty", "no workflow file", "/workflow")])
        return ScenarioFile(path, (path.parent / workflow).resolve(), scenarios)
    return ScenarioFile(path, workflow, scenarios)


def _check_steps(scenarios: list[Scenario], prefix: tuple[str, ...]) -> list[Finding]:
    """Rules across fields: only the first step may lack `user`; names unique in a file."""
    findings: list[Finding] = []
    names: set[str] = set()
    for index, scenario in enumerate(scenarios):
        at: tuple[str | int, ...] = (*prefix, index) if prefix else ()
        if scenario.name in names:
            message = f"another scenario in this file is named {scenario.name!r}"
            findings.append(_finding("duplicate_name", message, json_pointer(*at, "name")))
        names.add(scenario.name)
        for number, step in enumerate(scenario.steps):
            if number > 0 and step.user is None:
                message = "only the first step may leave out `user` (it checks the greeting)"
                findings.append(
                    _finding("missing_user", message, json_pointer(*at, "steps", number, "user"))
                )
    return findings


# --- YAML 1.2 core schema ------------------------------------------------------------------

_REPLACED_TAGS = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}


class _CoreSchemaLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars and duplicate keys refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) or key is None:
                if key in seen:
                    mark = key_node.start_mark
                    raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_core_int(self, node: yaml.ScalarNode) -> int:
        return int(str(self.construct_scalar(node)))


_CoreSchemaLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CoreSchemaLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreSchemaLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_CoreSchemaLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)
_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _CoreSchemaLoader.construct_core_int)


def _parse_yaml(path: Path, text: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_CoreSchemaLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        where = ""
        if exc.problem_mark is not None:
            where = f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
        message = f"{exc.problem or 'invalid YAML'}{where}"
        raise ScenarioFileInvalid(path, [_finding("syntax", message, "")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioFileInvalid(path, [_finding("syntax", str(exc), "")]) from None
    if not isinstance(data, dict):
        message = f"a scenario file must be a mapping, found {type(data).__name__}"
        raise ScenarioFileInvalid(path, [_finding("not_a_mapping", message, "")])
    return data


# --- errors with pointers --------------------------------------------------------------------

# Keys each part of the file accepts, for "unknown key" messages that say what was meant.
_KEYS = {
    "file": ["workflow", *Scenario.model_fields],
    "file_of_many": list(_ManyFile.model_fields),
    "scenario": list(Scenario.model_fields),
    "step": list(Step.model_fields),
    "expect": list(Expect.model_fields),
    "stub": list(ToolStub.model_fields),
    "llm": list(ScriptedReply.model_fields),
}


def _from_error(error: ErrorDetails, data: Any, many: bool) -> Finding:
    parts = _data_path(error, data)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = _unknown_key(str(parts[-1]), parts[:-1], many)
    elif error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] == "string_type" and isinstance(error.get("input"), bool):
        message += " (true/false is a boolean in YAML: quote it)"
    message = message.removeprefix("Value error, ")
    return _finding(error["type"], message, json_pointer(*parts))


def _unknown_key(key: str, parent: list[str | int], many: bool) -> str:
    kind = _kind_of(parent)
    if kind == "file" and many:
        kind = "file_of_many"
    if kind == "step" and key in ("within_ms", "judge", "say", "node", "vars", "end", "tool"):
        return f"unknown key {key!r}: it belongs inside `expect`"
    return f"unknown key {key!r} (expected one of: {', '.join(_KEYS[kind])})"


def _kind_of(parent: list[str | int]) -> str:
    if not parent:
        return "file"
    last, before = parent[-1], parent[-2] if len(parent) > 1 else None
    if last == "expect":
        return "expect"
    if before == "tools":
        return "stub"
    if isinstance(last, int):
        return {"steps": "step", "llm": "llm"}.get(str(before), "scenario")
    return "file"


def _data_path(error: ErrorDetails, data: Any) -> list[str | int]:
    """The location in the author's data: pydantic adds steps that are not keys (union
    branches, validator names), so follow the location through the data and keep real keys."""
    location = error["loc"]
    parts: list[str | int] = []
    current = data
    for index, step in enumerate(location):
        is_key = isinstance(current, dict) and step in current
        is_index = isinstance(current, list) and isinstance(step, int) and 0 <= step < len(current)
        if is_key or is_index:
            current = current[step]
        elif error["type"] == "missing" and index == len(location) - 1:
            pass
        else:
            continue
        parts.append(step)
    return parts


def _finding(code: str, message: str, pointer: str) -> Finding:
    return Finding(severity="error", code=code, message=message, pointer=pointer)
