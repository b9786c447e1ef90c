"""``@idempotent``: how a creating route opts in to ``Idempotency-Key`` — one line under
its ``@router.post(...)``.

The route's endpoint runs only when its request claimed the key; the answer it returns
is kept on the key in the request's unit of work, and a retry gets that answer again
with ``Idempotent-Replayed: true``. An answer naming a task (``TaskAnswer``) is replayed
as an answer about the same task: 202 with the same ``task_id`` and ``Location``, or,
when the retry sends ``Prefer: wait=N``, the task's own answer once it ends.

Only answers of work that was committed are kept: a refusal the route raises (404, 409,
422, 503 …) rolls the key back with the work, so a retry runs again. A 503 because the
queue refused the task forgets the key too (``UnitOfWork.if_refused``).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, TypeVar, cast

from celery import Celery
from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, serialize_response

from botmgr.deps import CeleryDep, SettingsDep, UnitDep
from botmgr.errors import Invalid
from botmgr.idempotency import service
from botmgr.security import Operator
from botmgr.settings import Settings
from botmgr.tasks.answers import TaskAnswer
from botmgr.uow import UnitOfWork

REPLAYED = "Idempotent-Replayed"
# Stripe's limit; printable ASCII, so the key round-trips through any proxy and log.
_KEY = re.compile(r"[\x20-\x7e]{1,255}")
BAD_KEY = "Idempotency-Key must be 1 to 255 printable ASCII characters"
_PARAM = "idempotency_"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True, slots=True)
class _Keyed:
    """What ``@idempotent`` needs besides the endpoint's own parameters."""

    key: str | None
    body: bytes
    request: Request
    unit: UnitOfWork
    operator: str
    settings: Settings
    celery: Celery


async def _keyed(
    request: Request,
    unit: UnitDep,
    operator: Operator,
    settings: SettingsDep,
    celery: CeleryDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Stripe-style: a retry with the same key and body gets the first "
            "answer again (Idempotent-Replayed: true) instead of doing the work twice"
        ),
    ] = None,
) -> _Keyed:
    if idempotency_key is None:
        return _Keyed(None, b"", request, unit, operator, settings, celery)
    if not _KEY.fullmatch(idempotency_key):
        raise Invalid(BAD_KEY)
    # Starlette keeps the body FastAPI read for the body parameter: no second read.
    body = await request.body()
    return _Keyed(idempotency_key, body, request, unit, operator, settings, celery)


def idempotent(endpoint: Endpoint) -> Endpoint:
    """Give ``endpoint`` Idempotency-Key semantics (see the module's docstring)."""
    signature = inspect.signature(endpoint, eval_str=True)
    if _PARAM in signature.parameters:
        raise TypeError(f"{endpoint.__name__} already has a parameter {_PARAM!r}")
    keyed_param = inspect.Parameter(
        _PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[_Keyed, Depends(_keyed)]
    )

    @functools.wraps(endpoint)
    async def answer_once(**values: Any) -> Any:
        keyed: _Keyed = values.pop(_PARAM)
        if keyed.key is None:
            return await endpoint(**values)
        session = keyed.unit.session
        ttl = timedelta(hours=keyed.settings.idempotency_ttl_hours)
        claimed = await service.claim(session, _keyed_request(keyed), ttl=ttl)
        if isinstance(claimed, service.Answer):
            return _replay(claimed, keyed)
        response = await _as_response(await endpoint(**values), keyed.request)
        await service.record(session, claimed, _answer(response))
        keyed.unit.if_refused(functools.partial(service.release, claimed=claimed))
        return response

    # FastAPI reads the parameters (and their dependencies) from this signature.
    answer_once.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), keyed_param]
    )
    return cast(Endpoint, answer_once)


def _route(request: Request) -> APIRoute:
    route = request.scope.get("route")
    assert isinstance(route, APIRoute), "@idempotent is for FastAPI routes"
    return route


def _keyed_request(keyed: _Keyed) -> service.KeyedRequest:
    assert keyed.key is not None
    request = keyed.request
    return service.KeyedRequest(
        scope=f"{request.method} {_route(request).path}",
        principal=keyed.operator,
        key=keyed.key,
        fingerprint=service.fingerprint(
            request.method, request.url.path, request.url.query, keyed.body
        ),
    )


async def _as_response(result: object, request: Request) -> Response:
    """The response FastAPI would send for ``result``: a route answering a model is
    serialised here, as its response model says, so its answer can be kept."""
    if isinstance(result, Response):
        return result
    route = _route(request)
    content = await serialize_response(
        field=route.response_field,
        response_content=result,
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
    )
    return JSONResponse(content, status_code=route.status_code or 200)


def _answer(response: Response) -> service.Answer:
    body = getattr(response, "body", None)
    if not isinstance(body, bytes | memoryview):
        raise TypeError("an idempotent route answers with a complete body, not a stream")
    headers = [
        (name, value) for name, value in response.headers.items() if name != "content-length"
    ]
    task_id = response.task_id if isinstance(response, TaskAnswer) else None
    return service.Answer(response.status_code, headers, bytes(body), task_id)


def _extra(answer: service.Answer) -> dict[str, Any]:
    """What the first answer said besides its task (TaskAnswer's ``extra``)."""
    try:
        body = json.loads(answer.body or b"{}")
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    if answer.status_code == 202:
        return {k: v for k, v in body.items() if k != "task_id"}
    return {k: body[k] for k in TaskAnswer.ECHOED if k in body}


def _replay(answer: service.Answer, keyed: _Keyed) -> Response:
    if answer.task_id is not None:
        return TaskAnswer(
            keyed.celery,
            answer.task_id,
            prefer=keyed.request.headers.get("prefer"),
            cap=keyed.settings.task_wait_cap,
            headers={REPLAYED: "true"},
            extra=_extra(answer),
        )
    response = Response(answer.body, answer.status_code)
    for name, value in answer.headers:
        response.headers.append(name, value)
    response.headers[REPLAYED] = "true"
    return response
