"""`judge:` claims: a plain-language statement about the agent's reply, checked by an LLM.

The model is offered one function, `verdict(holds, reason)`. Small local models do not always
call functions, so a text answer starting with yes/no (true/false, pass/fail) is read too;
anything else counts as the claim not holding, with the model's words as the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from voxflow.providers.llm.base import LLM, ChatMessage, FunctionSpec

VERDICT = FunctionSpec(
    name="verdict",
    description="Report whether the claim holds for the agent's last reply.",
    parameters={
        "type": "object",
        "properties": {
            "holds": {"type": "boolean", "description": "True if the claim is true."},
            "reason": {"type": "string", "description": "One short sentence why."},
        },
        "required": ["holds", "reason"],
    },
)

INSTRUCTIONS = (
    "You check claims about a phone call between a caller and a voice agent. You get the "
    "conversation so far and a claim about the agent's last reply. Decide strictly from the "
    "text whether the claim holds, then call the function `verdict` with `holds` and a short "
    "`reason`."
)

_YES = frozenset({"yes", "true", "pass", "passed", "holds"})
_NO = frozenset({"no", "false", "fail", "failed"})


@dataclass(frozen=True)
class Verdict:
    holds: bool
    reason: str


# (who, text) in order: who is "caller" or "agent".
Transcript = Sequence[tuple[str, str]]


async def judge_claim(llm: LLM, claim: str, transcript: Transcript) -> Verdict:
    """Ask `llm` whether `claim` holds; raises LLMError when the model cannot be asked."""
    conversation = "\n".join(f"{who}: {text}" for who, text in transcript) or "(nothing yet)"
    last_reply = next((text for who, text in reversed(transcript) if who == "agent"), "")
    question = (
        f"Conversation:\n{conversation}\n\n"
        f"The agent's last reply: {last_reply or '(the agent said nothing)'}\n\n"
        f"Claim: {claim}"
    )
    response = await llm.complete(
        [
            ChatMessage(role="system", content=INSTRUCTIONS),
            ChatMessage(role="user", content=question),
        ],
        functions=[VERDICT],
    )
    for call in response.tool_calls:
        if call.name == VERDICT.name:
            holds = call.arguments.get("holds")
            reason = str(call.arguments.get("reason") or "").strip() or "(no reason given)"
            return Verdict(holds is True or str(holds).lower() == "true", reason)
    return _from_text(response.text)


def _from_text(text: str) -> Verdict:
    words = text.strip().split(maxsplit=1)
    first = words[0].strip(".,:;!").lower() if words else ""
    reason = words[1].strip() if len(words) > 1 else text.strip()
    if first in _YES:
        return Verdict(True, reason or "(no reason given)")
    if first in _NO:
        return Verdict(False, reason or "(no reason given)")
    return Verdict(False, f"unclear verdict from the model: {text.strip()!r}")
