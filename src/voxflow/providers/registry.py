"""The providers a call uses: the process's configured model, else the org's own OpenAI key."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping

import structlog

from voxflow.core.context import AppContext
from voxflow.core.errors import Conflict, InvalidInput
from voxflow.providers.llm import LLM, OpenAICompatibleLLM
from voxflow.vault.runtime import CallSecrets

log = structlog.get_logger("voxflow.providers")

OPENAI_SECRET = "OPENAI_API_KEY"  # noqa: S105 (a secret's name)
LOCAL_LLM_NAMES = frozenset({"local", "offline", "none"})
LLM_NAMES = frozenset({"auto", "openai"}) | LOCAL_LLM_NAMES
# Calls whose model choice is remembered, so a text session reads the org's key once per call
# (engine_for runs per turn), not once per turn.
CALL_CHOICES_KEPT = 4096


class ProviderKeyMissing(Conflict):
    slug = "provider-key-missing"


def configured_llm(context: AppContext) -> LLM | None:
    """The model from `VOXFLOW_LLM_*`, or None: offline (routes by examples, no judge)."""
    settings = context.settings
    if settings.llm_model is None:
        return None
    llm: LLM | None = context.extras.get("llm")
    if llm is None:
        api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        llm = OpenAICompatibleLLM(
            settings.llm_model,
            base_url=settings.llm_base_url,
            api_key=api_key,
            timeout_s=settings.llm_timeout_s,
        )
        context.extras["llm"] = llm
    return llm


def llm_secrets_wanted(context: AppContext, workflow_llm_setting: str) -> list[str]:
    """The org secrets the model choice needs read (none when the operator configured one)."""
    name = _llm_name(workflow_llm_setting)
    if name in LOCAL_LLM_NAMES or context.settings.llm_model is not None:
        return []
    return [OPENAI_SECRET]


def llm_from(
    context: AppContext, org_id: str, workflow_llm_setting: str, org_secrets: Mapping[str, str]
) -> LLM | None:
    """The model for a call, given the org secrets read for it (`llm_secrets_wanted`).

    `local`: none. `auto`/`openai`: the operator's model, else one on the org's OPENAI_API_KEY,
    else none for `auto` and an error naming the secret for `openai`.
    """
    name = _llm_name(workflow_llm_setting)
    if name in LOCAL_LLM_NAMES:
        return None
    operator = configured_llm(context)
    if operator is not None:
        return operator
    key = org_secrets.get(OPENAI_SECRET)
    if key:
        return _org_openai(context, org_id, key)
    if name == "openai":
        raise ProviderKeyMissing(
            "The workflow asks for the OpenAI language model but no key is set: add the "
            f"secret {OPENAI_SECRET} under Secrets (or set VOXFLOW_LLM_MODEL)."
        )
    return None


async def org_llm(
    context: AppContext, org_id: str, call_id: str, workflow_llm_setting: str
) -> LLM | None:
    """The call's model (see `llm_from`); the org's key is read at most once per call."""
    calls: OrderedDict[tuple[str, str, str], LLM | None] = context.extras.setdefault(
        "llm_by_call", OrderedDict()
    )
    remembered = (org_id, call_id, workflow_llm_setting)
    if remembered in calls:
        calls.move_to_end(remembered)
        return calls[remembered]
    wanted = llm_secrets_wanted(context, workflow_llm_setting)
    secrets = await CallSecrets(context, org_id, call_id).resolve_present(wanted) if wanted else {}
    llm = llm_from(context, org_id, workflow_llm_setting, secrets)
    _remember_call_llm(context, org_id, call_id, workflow_llm_setting, llm)
    return llm


def _remember_call_llm(
    context: AppContext, org_id: str, call_id: str, workflow_llm_setting: str, llm: LLM | None
) -> None:
    """Record a call's model choice, so its later turns do not read the key again."""
    calls: OrderedDict[tuple[str, str, str], LLM | None] = context.extras.setdefault(
        "llm_by_call", OrderedDict()
    )
    calls[(org_id, call_id, workflow_llm_setting)] = llm
    while len(calls) > CALL_CHOICES_KEPT:
        calls.popitem(last=False)


def _org_openai(context: AppContext, org_id: str, key: str) -> LLM:
    # One client per org and key: a rotated key gets a new client, calls in flight keep theirs.
    clients: dict[str, tuple[str, OpenAICompatibleLLM]] = context.extras.setdefault("org_llms", {})
    fingerprint = hashlib.sha256(key.encode()).hexdigest()
    cached = clients.get(org_id)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    settings = context.settings
    llm = OpenAICompatibleLLM(
        settings.openai_model,
        base_url=settings.openai_base_url,
        api_key=key,
        timeout_s=settings.llm_timeout_s,
    )
    clients[org_id] = (fingerprint, llm)
    log.info("org_llm_created", org_id=org_id, model=settings.openai_model)
    return llm


def _llm_name(setting: str) -> str:
    name = setting.strip().lower()
    if name not in LLM_NAMES:
        known = ", ".join(sorted(LLM_NAMES))
        raise InvalidInput(f"settings.llm: unknown provider {setting!r} (one of {known})")
    return name
