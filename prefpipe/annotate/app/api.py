"""The JSON API for scripts: next task, one task, submit; every call carries a Bearer token.

The API authenticates every call with the Authorization header and ignores cookies. A browser
never attaches that header on its own to a cross-site request (and a cross-site fetch that sets it
needs a CORS preflight, which this app does not grant), so a forged request carries no
credentials: CSRF tokens are not needed here. A body is read only once its token checked out
(`submit_body`): a stranger gets 401 whatever they send."""
from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from prefpipe.annotate import annotation
from prefpipe.annotate.app.state import ApiUser, State
from prefpipe.annotate.rules import to_shown_choice

router = APIRouter(prefix="/api")


class ApiSubmit(BaseModel):
    task_id: str
    choice: str  # 'first' | 'second' | 'tie' | 'both_bad', as shown
    rationale: str | None = None


async def submit_body(request: Request, user: ApiUser) -> ApiSubmit:
    """The body of /api/submit, read only once the caller's token checked out (`user`): a stranger
    gets 401 whatever the body holds. Invalid JSON or fields: 422, as FastAPI words it."""
    try:
        return ApiSubmit.model_validate_json(await request.body())
    except ValidationError as err:
        errors = err.errors(include_url=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def task_json(task: annotation.TaskView) -> dict:
    """What an annotator may see of a task: no pair id, no a/b mapping, no gold flag."""
    fields = asdict(task)
    fields.pop("pair_id")
    return fields


@router.get("/next")
def api_next(user: ApiUser, state: State) -> Response:
    task = annotation.next_task(state.store, user.annotator_id)
    done, total = (task.done, task.total) if task else annotation.queue_progress(state.store,
                                                                                  user.annotator_id)
    return JSONResponse({"task": task_json(task) if task else None, "done": done, "total": total})


@router.get("/task/{task_id}")
def api_task(task_id: str, user: ApiUser, state: State) -> Response:
    try:
        task = annotation.get_task(state.store, user.annotator_id, task_id)
    except (LookupError, PermissionError):  # the same answer: no probing other queues
        return JSONResponse({"detail": "no such task in your queue"}, 404)
    return JSONResponse({"task": task_json(task), "done": task.done, "total": task.total})


@router.post("/submit")
def api_submit(body: Annotated[ApiSubmit, Depends(submit_body)], user: ApiUser, state: State) -> Response:
    try:
        label = annotation.submit(state.store, user.annotator_id, body.task_id, body.choice, body.rationale)
    except (LookupError, PermissionError):
        return JSONResponse({"detail": "no such task in your queue"}, 404)
    except ValueError as err:
        return JSONResponse({"detail": str(err)}, 400)
    # the stored answer (the first one on a double submit), in the order the annotator saw
    return JSONResponse({"task_id": body.task_id, "choice": to_shown_choice(label.choice, label.shown_order)})
