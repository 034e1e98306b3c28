"""What every route of the annotation app shares: the store, the signing secret, the pages, and who
is asking (a signed-in browser session or a Bearer token)."""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from prefpipe.annotate import annotation
from prefpipe.annotate.app import security
from prefpipe.store import Store


@dataclass(frozen=True)
class AppState:
    """Built once by `create_app` and kept on `app.state.annotate`."""
    store: Store
    secret: bytes  # signs sessions and CSRF tokens
    rubric: Markup  # the guidelines shown beside each task
    metrics_file: Path  # the label stage's metrics, shown on /admin if present
    templates: Jinja2Templates

    def page(self, request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
        return self.templates.TemplateResponse(request, name, {"user": None, **context},
                                               status_code=status_code)

    def error(self, request: Request, status_code: int, message: str,
              user: User | None = None) -> HTMLResponse:
        return self.page(request, "error.html", status_code, status=status_code, message=message, user=user,
                         csrf=security.csrf_token(self.secret, user.session) if user and user.session else "")

    def csrf(self, user: User) -> str:
        return security.csrf_token(self.secret, user.session)

    def signed_in(self, annotator_id: str) -> RedirectResponse:
        """Redirect to /label with a fresh session cookie (the sign-in token leaves the URL here)."""
        token_sha256, _ = annotation.annotator_token_hash(self.store, annotator_id)
        response = RedirectResponse("/label", status_code=303)
        session = security.make_session(self.secret, annotator_id, token_sha256)
        response.set_cookie(security.SESSION_COOKIE, session, max_age=security.SESSION_MAX_AGE_S,
                            httponly=True, samesite="strict", path="/")
        return response


@dataclass(frozen=True)
class User:
    annotator_id: str
    is_admin: bool
    session: str | None = None  # the cookie value, for the CSRF token; None for API callers


class LoginRequired(Exception):
    """A page was asked for without a valid session: the handler redirects to /login."""


def app_state(request: Request) -> AppState:
    return request.app.state.annotate


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def session_user(request: Request, state: AppState) -> User | None:
    """The signed-in annotator of a valid, current session cookie, else None."""
    value = request.cookies.get(security.SESSION_COOKIE)
    found = security.read_session(state.secret, value)
    if found is None:
        return None
    annotator_id, fingerprint = found
    current = annotation.annotator_token_hash(state.store, annotator_id)
    if current is None or not hmac.compare_digest(current[0][:16], fingerprint):
        return None  # the token was rotated or the annotator removed
    return User(annotator_id, current[1], value)


def page_user(request: Request, state: AppState = Depends(app_state)) -> User:
    """Pages: the session's annotator, or a redirect to /login."""
    user = session_user(request, state)
    if user is None:
        raise LoginRequired()
    return user


def api_user(request: Request, state: AppState = Depends(app_state)) -> User:
    """Bearer-token auth; resolved before the body is parsed, so a stranger always gets 401."""
    found = annotation.annotator_for_token(
        state.store, security.bearer_token(request.headers.get("authorization")))
    if found is None:
        raise HTTPException(401, "send Authorization: Bearer <your token>",
                            headers={"WWW-Authenticate": "Bearer"})
    return User(*found)


# What a route declares to get them: `state: State`, `user: PageUser` (pages) or `user: ApiUser`.
State = Annotated[AppState, Depends(app_state)]
PageUser = Annotated[User, Depends(page_user)]
ApiUser = Annotated[User, Depends(api_user)]
