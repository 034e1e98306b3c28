"""Signing in and out: a token (typed, or in a /login?token= link) becomes a session cookie."""
from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from prefpipe.annotate import annotation
from prefpipe.annotate.app import security
from prefpipe.annotate.app.state import PageUser, State, own_origin

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
    return state.signed_in(found[0])


@router.post("/login")
def login_post(request: Request, state: State, token: str | None = Form(None)) -> Response:
    if not security.same_origin(request.headers, own_origin(request)):
        return state.error(request, 403, "Cross-site sign-in refused.")
    found = annotation.annotator_for_token(state.store, token)
    if found is None:
        return state.page(request, "login.html", 401, error="That token is not valid.", token="")
    return state.signed_in(found[0])


@router.post("/logout")
def logout(request: Request, user: PageUser, state: State, csrf: str | None = Form(None)) -> Response:
    if not (security.same_origin(request.headers, own_origin(request))
            and security.csrf_ok(state.secret, user.session, csrf)):
        return state.error(request, 403, "Cross-site request refused.", user)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
