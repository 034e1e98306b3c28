"""Signing in and out: a token (typed, or in a /login?token= link) becomes a session (a row in the
store, its random id in a cookie); signing out deletes the row, so the cookie stops working at once."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from prefpipe.annotate import annotation
from prefpipe.annotate.app import security
from prefpipe.annotate.app.state import LoginForm, PageForm, PageUser, State, field, own_origin

router = APIRouter()


@router.get("/")
def root() -> Response:
    return RedirectResponse("/label", status_code=303)


@router.get("/login")
def login_page(request: Request, state: State, token: str | None = None) -> Response:
    if token is None:
        return state.page(request, "login.html", error=None, token="")
    found = annotation.annotator_for_token(state.store, token)
    if found is None:
        return state.page(request, "login.html", 401, error="That token is not valid.", token="")
    if request.headers.get("sec-fetch-site") == "cross-site":
        # a link on another site must not silently sign the browser in (login CSRF): confirm
        return state.page(request, "login.html", error=None, token=token)
    return state.sign_in(request, token)


@router.post("/login")
def login_post(request: Request, state: State, form: LoginForm) -> Response:
    if form is None:  # not from the app's own origin: the body was not read
        return state.error(request, 403, "Cross-site sign-in refused.")
    return state.sign_in(request, field(form, "token"))


@router.post("/logout")
def logout(request: Request, user: PageUser, state: State, form: PageForm) -> Response:
    if not (security.same_origin(request.headers, own_origin(request))
            and security.csrf_ok(state.secret, user.session, field(form, "csrf"))):
        return state.error(request, 403, "Cross-site request refused.", user)
    state.sign_out(user)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
