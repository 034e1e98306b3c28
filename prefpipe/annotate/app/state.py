"""What every route of the annotation app shares: the store, the signing secret, the pages, who is
asking (a signed-in browser session or a Bearer token) and the request body, read only after that.

FastAPI reads a body a route declares (`Form(...)`, a pydantic model) before it resolves any
dependency, so a stranger's 300 MB body would be read before the 401. Routes here declare no body:
they take it from `page_form` (or the API's `api.submit_body`), dependencies that first need the
signed-in user; the sign-in form (`login_form`) is read only from the app's own origin."""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.datastructures import FormData

from prefpipe.annotate import annotation
from prefpipe.annotate.app import security
from prefpipe.annotate.rules import MAX_TOKEN_CHARS, token_hash
from prefpipe.store import Store


@dataclass(frozen=True)
class AppState:
    """Built once by `create_app` and kept on `app.state.annotate`."""
    store: Store
    secret: bytes  # signs CSRF tokens
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

    def sign_in(self, request: Request, token: str | None) -> Response:
        """Start a session for the token's annotator and redirect to /label with its cookie (the
        sign-in token leaves the URL here); the login page with 401 for a token no one holds."""
        session = security.new_session()
        now, expires = security.session_times()
        found = None
        if token and len(token) <= MAX_TOKEN_CHARS:
            found = self.store.sessions.create(security.session_hash(session), token_hash(token),
                                               now, expires)
        if found is None:
            return self.page(request, "login.html", 401, error="That token is not valid.", token="")
        response = RedirectResponse("/label", status_code=303)
        response.set_cookie(security.SESSION_COOKIE, session, max_age=security.SESSION_MAX_AGE_S,
                            httponly=True, samesite="strict", path="/")
        return response

    def sign_out(self, user: User) -> None:
        """End the user's session: its cookie stops working at once."""
        self.store.sessions.delete(security.session_hash(user.session))


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
    """The signed-in annotator of a live session cookie, else None."""
    value = request.cookies.get(security.SESSION_COOKIE)
    key = security.session_hash(value)
    found = state.store.sessions.lookup(key, security.session_times()[0]) if key else None
    return None if found is None else User(*found, session=value)


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


async def page_form(request: Request, user: PageUser) -> AsyncIterator[FormData]:
    """A signed-in page's form fields, read only once the session checked out (`user`)."""
    async with request.form() as form:
        yield form


async def login_form(request: Request) -> AsyncIterator[FormData | None]:
    """The sign-in form's fields, read only when the post comes from the app's own origin; None
    for a cross-site post (its body is never read)."""
    if not security.same_origin(request.headers, own_origin(request)):
        yield None
        return
    async with request.form() as form:
        yield form


def field(form: FormData, name: str) -> str | None:
    """A text field of a form (None when missing or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else None


# What a route declares to get them: `state: State`, `user: PageUser` (pages) or `user: ApiUser`,
# and a page's posted fields `form: PageForm` (or `form: LoginForm` on /login).
State = Annotated[AppState, Depends(app_state)]
PageUser = Annotated[User, Depends(page_user)]
ApiUser = Annotated[User, Depends(api_user)]
PageForm = Annotated[FormData, Depends(page_form)]
LoginForm = Annotated[FormData | None, Depends(login_form)]
