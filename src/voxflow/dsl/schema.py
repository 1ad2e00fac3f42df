"""Pydantic models of a `schema: voxflow/v1` workflow document.

These models are the single source of truth for the DSL: the API validates with them and their
JSON Schema drives the editor's forms, so every field carries a short description.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
)

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
NODE_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"

Text = Annotated[str, Field(max_length=4000)]
Cel = Annotated[str, Field(max_length=2048)]
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, max_length=200)]
NodeId = Annotated[str, Field(pattern=NODE_ID_PATTERN)]
# A reference is checked against the node ids by `check_structure`, not by pattern, so that a
# typo is reported as `unknown_node` with the name the author wrote.
NodeRef = Annotated[str, Field(min_length=1, max_length=200)]
VariableRef = Annotated[str, Field(min_length=1, max_length=200)]

# Integers and booleans are Strict* so YAML surprises (`retries: yes`, `interruptions: "no"`) are
# reported instead of silently coerced.

VariableType = Literal[
    "string", "integer", "number", "boolean", "date", "time", "email", "phone", "object", "enum"
]
Outcome = Literal["completed", "transferred", "failed", "timeout", "abandoned"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class Route(_Model):
    """A way out of a conversation node (or, in settings, out of any node)."""

    to: NodeRef = Field(description="Id of the node to go to.")
    intent: str | None = Field(None, max_length=200, description="Name of the caller's intent.")
    examples: list[Text] = Field([], description="Utterances that express the intent.")
    when: Cel | None = Field(None, description="CEL guard that must hold to take the route.")
    requires: list[VariableRef] = Field(
        [], description="Variables that must be set before the route may be taken."
    )


class WorkflowSettings(_Model):
    """Call-wide settings."""

    language: str = Field("en", max_length=35, description="BCP 47 language tag.")
    timezone: str = Field("UTC", max_length=64, description="IANA time zone for dates and times.")
    max_duration_s: StrictInt = Field(600, ge=1, le=86400, description="Call length limit, s.")
    interruptions: StrictBool = Field(True, description="Whether the caller may barge in.")
    # `auto`: the cloud provider when a key is configured (operator or the org's vault secret),
    # else offline; `local`/`offline`: never the cloud (docs/operations.md).
    stt: Literal["auto", "local", "offline", "deepgram"] = Field(
        "auto", description="Speech-to-text provider."
    )
    llm: Literal["auto", "local", "offline", "none", "openai"] = Field(
        "auto", description="Language model provider."
    )
    tts: Literal["auto", "local", "offline", "cartesia", "piper"] = Field(
        "auto", description="Text-to-speech provider."
    )
    region: str = Field(
        "US", pattern=r"^[A-Z]{2}$", description="Default country for phone numbers (ISO 3166)."
    )
    match_threshold: StrictInt = Field(
        75,
        ge=1,
        le=100,
        description="Without an LLM: how closely (0-100) an utterance must match a route example.",
    )
    global_routes: list[Route] = Field(
        [], description="Routes checked on every user turn before the node's own handling."
    )


class VariableSpec(_Model):
    """Declaration of a typed workflow variable."""

    type: VariableType = Field(description="Value type; decides how answers are parsed.")
    choices: dict[str, list[Text]] | None = Field(
        None,
        validate_default=True,
        description="For enum: each value mapped to its synonyms.",
    )
    description: Text | None = Field(None, description="What the variable holds.")
    default: Any = Field(None, description="Initial value.")

    # A field validator (not a model validator) so the error points at `/variables/<name>/choices`.
    @field_validator("choices")
    @classmethod
    def _choices_only_for_enum(
        cls, value: dict[str, list[str]] | None, info: ValidationInfo
    ) -> dict[str, list[str]] | None:
        kind = info.data.get("type")
        if kind == "enum" and not value:
            raise ValueError("an enum variable needs at least one choice")
        if kind is not None and kind != "enum" and value is not None:
            raise ValueError(f"choices are only allowed for enum variables, not {kind}")
        return value


class _NodeBase(_Model):
    id: NodeId = Field(description="Unique node id.")
    title: str | None = Field(None, max_length=200, description="Label shown in the editor.")


class SayNode(_NodeBase):
    """Speak a line, then continue."""

    type: Literal["say"] = Field(description="Node type.")
    text: Text = Field(description="Jinja2 template of what to say.")
    next: NodeRef = Field(description="Node to continue with.")
    on_error: NodeRef | None = Field(None, description="Node to go to when the text fails.")


class ConversationNode(_NodeBase):
    """Free talk driven by the LLM (or example matching), left through a route."""

    type: Literal["conversation"] = Field(description="Node type.")
    prompt: Text = Field(description="Instructions for this part of the conversation.")
    routes: list[Route] = Field(min_length=1, description="Ways out of the node.")
    reprompt: Text | None = Field(
        None, description="What to say when no route matches (without an LLM)."
    )
    max_turns: StrictInt = Field(3, ge=1, description="User turns before `fallback`.")
    fallback: NodeRef | None = Field(None, description="Node to go to after `max_turns`.")
    on_error: NodeRef | None = Field(None, description="Node to go to on a runtime error.")


class CollectNode(_NodeBase):
    """Ask for one typed variable."""

    type: Literal["collect"] = Field(description="Node type.")
    variable: VariableRef = Field(description="Declared variable to fill.")
    prompt: Text = Field(description="Question to ask.")
    validate_: Cel | None = Field(
        None, alias="validate", description="CEL condition the answer must satisfy."
    )
    invalid: Text | None = Field(None, description="What to say when the answer is rejected.")
    retries: StrictInt = Field(2, ge=0, le=10, description="Times to ask again before `on_fail`.")
    confirm: StrictBool = Field(False, description="Read the value back for confirmation.")
    next: NodeRef = Field(description="Node to continue with once the variable is set.")
    on_fail: NodeRef | None = Field(None, description="Node to go to when retries run out.")
    on_error: NodeRef | None = Field(None, description="Node to go to on a runtime error.")


class Branch(_Model):
    """One arm of a branch node."""

    when: Cel = Field(description="CEL condition.")
    to: NodeRef = Field(description="Node to go to when the condition holds.")


class BranchNode(_NodeBase):
    """Take the first branch whose condition holds, otherwise `else`."""

    type: Literal["branch"] = Field(description="Node type.")
    branches: list[Branch] = Field(min_length=1, description="Conditions, tried in order.")
    else_: NodeRef = Field(alias="else", description="Node to go to when no condition holds.")
    on_error: NodeRef | None = Field(
        None, description="Node to go to when a condition cannot be evaluated."
    )


class ActionNode(_NodeBase):
    """Call a tool."""

    type: Literal["action"] = Field(description="Node type.")
    tool: str = Field(min_length=1, max_length=200, description="Tool name, e.g. http.request.")
    args: dict[str, Any] = Field({}, description="Tool arguments; strings are Jinja2 templates.")
    result: VariableRef | None = Field(None, description="Declared variable to store the result.")
    next: NodeRef = Field(description="Node to continue with.")
    on_error: NodeRef | None = Field(None, description="Node to go to when the tool fails.")


class TransferNode(_NodeBase):
    """Hand the call over to a person or another number."""

    type: Literal["transfer"] = Field(description="Node type.")
    text: Text | None = Field(None, description="What to say before transferring.")
    to: str = Field(min_length=1, max_length=500, description="Target: sip:/tel: URI or phone.")
    mode: Literal["warm", "cold"] = Field("cold", description="Warm or cold transfer.")


class EndNode(_NodeBase):
    """Say a closing line and hang up."""

    type: Literal["end"] = Field(description="Node type.")
    text: Text | None = Field(None, description="Closing line.")
    outcome: Outcome = Field("completed", description="Recorded outcome of the call.")


Node = Annotated[
    SayNode | ConversationNode | CollectNode | BranchNode | ActionNode | TransferNode | EndNode,
    Field(discriminator="type"),
]
NODE_TYPES = ("say", "conversation", "collect", "branch", "action", "transfer", "end")


class WorkflowDocument(_Model):
    """A whole workflow: settings, variables and the node graph."""

    schema_: Literal["voxflow/v1"] = Field(alias="schema", description="DSL version.")
    name: str = Field(min_length=1, max_length=200, description="Workflow name.")
    description: Text | None = Field(None, description="What the workflow is for.")
    settings: WorkflowSettings = Field(
        default_factory=WorkflowSettings, description="Call-wide settings."
    )
    variables: dict[Identifier, VariableSpec] = Field({}, description="Declared variables.")
    start: NodeRef = Field(description="Id of the first node.")
    nodes: list[Node] = Field(min_length=1, max_length=1000, description="The graph's nodes.")
