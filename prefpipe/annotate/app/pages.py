"""The labeling page: the next task of the signed-in annotator, and the form that answers it."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from prefpipe.annotate import annotation
from prefpipe.annotate.app import security
from prefpipe.annotate.app.state import PageForm, PageUser, State, field, own_origin

router = APIRouter()


@router.get("/label")
def label_page(request: Request, user: PageUser, state: State) -> Response:
    task = annotation.next_task(state.store, user.annotator_id)
    done, total = (task.done, task.total) if task else annotation.queue_progress(state.store,
                                                                                  user.annotator_id)
    gold = annotation.gold_accuracy(state.store).get(user.annotator_id) if user.is_admin else None
    return state.page(request, "label.html", user=user, task=task, done=done, total=total,
                      rubric=state.rubric, gold=gold, csrf=state.csrf(user))


@router.post("/label/submit")
def label_submit(request: Request, user: PageUser, state: State, form: PageForm) -> Response:
    if not security.same_origin(request.headers, own_origin(request)):
        return state.error(request, 403, "Cross-site post refused (Origin is not this app).", user)
    if not security.csrf_ok(state.secret, user.session, field(form, "csrf")):
        return state.error(request, 403, "Missing or wrong form token; reload the page and try again.", user)
    try:
        annotation.submit(state.store, user.annotator_id, field(form, "task_id") or "",
                          field(form, "choice") or "", field(form, "rationale"))
    except (LookupError, PermissionError):
        return state.error(request, 404, "No such task in your queue.", user)
    except ValueError as err:
        return state.error(request, 400, str(err), user)
    return RedirectResponse("/label", status_code=303)
