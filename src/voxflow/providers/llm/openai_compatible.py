"""Any OpenAI-compatible chat-completions endpoint: OpenAI, Ollama, llama.cpp, vLLM, ...

All traffic goes through a plain `httpx.AsyncClient` (the SDK accepts one next to its own
`httpx2` client), so tests fake the network with respx while the real SDK code runs.
The SDK's own retries are off: we retry exactly once, and never a stream that has already
produced output.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Self, TypeVar, cast

import httpx
import openai
import structlog
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)
from openai.types.completion_usage import CompletionUsage
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_fixed,
)

from voxflow.providers.llm.base import (
    ChatMessage,
    FunctionSpec,
    LLMChunk,
    LLMError,
    LLMResponse,
    ToolCallRequest,
)

log = structlog.get_logger("voxflow.llm")

OPENAI_BASE_URL = "https://api.openai.com/v1"
# The SDK insists on a key; local servers ignore whatever it sends.
PLACEHOLDER_API_KEY = "not-needed"
RETRYABLE_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
MAX_ERROR_DETAIL_CHARS = 300

_T = TypeVar("_T")
_P = ParamSpec("_P")


class OpenAICompatibleLLM:
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        http_client: httpx.AsyncClient | None = None,
        stream_usage: bool = False,
        retry_wait_s: float = 0.3,
    ) -> None:
        """`stream_usage` asks for token usage on streams (`stream_options.include_usage`);
        off by default because some llama.cpp / Ollama versions reject the option."""
        self.model = model
        self.name = f"openai-compatible/{model}"
        self._api_key = api_key
        self._stream_usage = stream_usage
        self._retry_wait_s = retry_wait_s
        self._owns_http_client = http_client is None
        self._http_client = (
            httpx.AsyncClient(timeout=timeout_s) if http_client is None else http_client
        )
        self._client = AsyncOpenAI(
            api_key=api_key or PLACEHOLDER_API_KEY,
            # Explicit so OPENAI_BASE_URL in the environment never silently redirects traffic.
            base_url=base_url or OPENAI_BASE_URL,
            timeout=timeout_s,
            max_retries=0,
            # Typed as httpx2.AsyncClient, but the SDK detects and supports legacy httpx clients.
            http_client=cast(Any, self._http_client),
        )

    async def aclose(self) -> None:
        if self._owns_http_client:
            await self._http_client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc_info: object) -> None:
        await self.aclose()

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        functions: Sequence[FunctionSpec] = (),
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> LLMResponse:
        request = self._request(messages, functions, temperature, max_tokens)

        async def attempt() -> LLMResponse:
            try:
                completion = await self._client.chat.completions.create(**request, stream=False)
            except Exception as error:
                raise self._to_llm_error(error) from _safe_cause(error)
            if not completion.choices:
                raise LLMError(f"{self.name}: response without choices", retryable=False)
            message = completion.choices[0].message
            calls = tuple(
                _tool_call(call.id, call.function.name, call.function.arguments)
                for call in message.tool_calls or ()
                # Custom (free-text) tools are never offered, so never expected back.
                if isinstance(call, ChatCompletionMessageFunctionToolCall)
            )
            return LLMResponse(
                text=message.content or "",
                tool_calls=calls,
                model=completion.model,
                usage=_usage(completion.usage),
            )

        return await self._with_one_retry(attempt)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        functions: Sequence[FunctionSpec] = (),
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[LLMChunk, None]:
        request = self._request(messages, functions, temperature, max_tokens)
        if self._stream_usage:
            request["stream_options"] = {"include_usage": True}
        # Everything up to the first text is retried as a whole: the caller has seen nothing yet.
        opened = await self._with_one_retry(self._open_stream, request)
        try:
            if opened.first_text:
                yield LLMChunk(text=opened.first_text)
            while not opened.exhausted:
                text = await self._next_text(opened)
                if text:
                    yield LLMChunk(text=text)
            calls, usage = opened.assembler.finish(self.name)
            yield LLMChunk(tool_calls=calls, usage=usage, done=True)
        finally:
            await opened.sdk_stream.close()

    async def _open_stream(self, request: dict[str, Any]) -> _OpenedStream:
        try:
            sdk_stream = await self._client.chat.completions.create(**request, stream=True)
        except Exception as error:
            raise self._to_llm_error(error) from _safe_cause(error)
        opened = _OpenedStream(sdk_stream)
        try:
            while not opened.exhausted and not opened.first_text:
                opened.first_text = await self._next_text(opened)
        except BaseException:
            await sdk_stream.close()
            raise
        return opened

    async def _next_text(self, opened: _OpenedStream) -> str:
        """Read one SDK chunk: returns its text and records tool-call fragments and usage."""
        try:
            chunk = await anext(opened.sdk_stream)
        except StopAsyncIteration:
            opened.exhausted = True
            return ""
        except Exception as error:
            raise self._to_llm_error(error) from _safe_cause(error)
        return opened.assembler.feed(chunk)

    def _request(
        self,
        messages: Sequence[ChatMessage],
        functions: Sequence[FunctionSpec],
        temperature: float,
        max_tokens: int | None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [_message_param(message) for message in messages],
            "temperature": temperature,
        }
        if functions:
            request["tools"] = [_tool_param(function) for function in functions]
            request["tool_choice"] = "auto"
        if max_tokens is not None:
            # `max_tokens`, not `max_completion_tokens`: the one every compatible server knows.
            request["max_tokens"] = max_tokens
        return request

    async def _with_one_retry(
        self, attempt: Callable[_P, Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(2),
            wait=wait_fixed(self._retry_wait_s),
            retry=retry_if_exception(lambda error: isinstance(error, LLMError) and error.retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        # A coroutine function, not a lambda: tenacity only awaits what it recognises as async.
        return await retrying(attempt, *args, **kwargs)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "llm.retry",
            provider=self.name,
            status=getattr(error, "status", None),
            error=str(error),
        )

    def _to_llm_error(self, error: Exception) -> LLMError:
        if isinstance(error, openai.APIStatusError):
            detail = self._scrub(_error_detail(error))
            return LLMError(
                f"{self.name}: HTTP {error.status_code}: {detail}",
                retryable=error.status_code in RETRYABLE_STATUSES,
                status=error.status_code,
            )
        # APITimeoutError is a subclass of APIConnectionError; both can only help on a retry.
        if isinstance(error, openai.APITimeoutError | httpx.TimeoutException):
            return LLMError(f"{self.name}: request timed out", retryable=True)
        if isinstance(error, openai.APIConnectionError | httpx.TransportError):
            return LLMError(f"{self.name}: connection failed", retryable=True)
        if isinstance(error, openai.APIError):
            # An error event inside a stream (e.g. context too long): the server's verdict.
            return LLMError(f"{self.name}: {self._scrub(error.message)}", retryable=False)
        return LLMError(
            f"{self.name}: unexpected {type(error).__name__}: {self._scrub(str(error))}",
            retryable=False,
        )

    def _scrub(self, text: str) -> str:
        # Some servers and proxies echo the rejected key back in their error message.
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return text[:MAX_ERROR_DETAIL_CHARS]


@dataclass
class _PartialToolCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _ToolCallAssembler:
    """Joins the fragments of streamed tool calls (keyed by their `index`) into whole calls."""

    partial_calls: dict[int, _PartialToolCall] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    _last_index: int = -1

    def feed(self, chunk: ChatCompletionChunk) -> str:
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
        if not chunk.choices:
            return ""
        delta = chunk.choices[0].delta
        for fragment in delta.tool_calls or ():
            index: int | None = fragment.index
            if index is None:
                # Some servers omit `index`: a fragment with an id starts a call, others continue.
                starts_call = fragment.id is not None or self._last_index < 0
                index = self._last_index + 1 if starts_call else self._last_index
            self._last_index = index
            partial = self.partial_calls.setdefault(index, _PartialToolCall())
            # id and name come whole in the first fragment; some servers repeat them later.
            partial.id = partial.id or (fragment.id or "")
            if fragment.function is not None:
                partial.name = partial.name or (fragment.function.name or "")
                partial.arguments += fragment.function.arguments or ""
        return delta.content or ""

    def finish(self, provider: str) -> tuple[tuple[ToolCallRequest, ...], dict[str, int]]:
        calls: list[ToolCallRequest] = []
        for index, partial in sorted(self.partial_calls.items()):
            if not partial.name:
                raise LLMError(f"{provider}: streamed tool call without a name", retryable=False)
            call_id = partial.id or f"call_{index}"
            calls.append(_tool_call(call_id, partial.name, partial.arguments))
        return tuple(calls), self.usage


class _OpenedStream:
    def __init__(self, sdk_stream: AsyncStream[ChatCompletionChunk]) -> None:
        self.sdk_stream = sdk_stream
        self.assembler = _ToolCallAssembler()
        self.first_text = ""
        self.exhausted = False


def _tool_call(call_id: str, name: str, raw_arguments: str) -> ToolCallRequest:
    try:
        # Some local servers send "" for a function without parameters.
        arguments = json.loads(raw_arguments) if raw_arguments.strip() else {}
    except json.JSONDecodeError:
        raise LLMError(
            f"the model called {name!r} with arguments that are not valid JSON", retryable=False
        ) from None
    if not isinstance(arguments, dict):
        raise LLMError(f"the model called {name!r} with non-object arguments", retryable=False)
    return ToolCallRequest(id=call_id, name=name, arguments=arguments)


def _usage(usage: CompletionUsage | None) -> dict[str, int]:
    if usage is None:
        return {}
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}


def _error_detail(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        # The SDK unwraps OpenAI's {"error": {...}}; other servers may nest it once more.
        nested = body.get("error")
        message = nested.get("message") if isinstance(nested, dict) else body.get("message")
        if isinstance(message, str):
            return message
    return error.message


def _safe_cause(error: Exception) -> BaseException | None:
    """Chain transport errors for debugging, but not HTTP errors: their text comes from the
    server and may echo the api key."""
    return None if isinstance(error, openai.APIStatusError) else error


def _message_param(message: ChatMessage) -> ChatCompletionMessageParam:
    content = message.content or ""
    match message.role:
        case "system":
            return {"role": "system", "content": content}
        case "user":
            return {"role": "user", "content": content}
        case "tool":
            return {"role": "tool", "content": content, "tool_call_id": message.tool_call_id or ""}
        case "assistant":
            if not message.tool_calls:
                return {"role": "assistant", "content": content}
            return {
                "role": "assistant",
                "content": message.content,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": json.dumps(call.arguments, ensure_ascii=False),
                        },
                    }
                    for call in message.tool_calls
                ],
            }


def _tool_param(function: FunctionSpec) -> ChatCompletionFunctionToolParam:
    return {
        "type": "function",
        "function": {
            "name": function.name,
            "description": function.description,
            "parameters": function.parameters,
        },
    }
