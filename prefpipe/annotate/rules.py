"""The rules of human annotation that hold whatever stores the answers.

Annotator ids, answers as shown ('first'/'second'/'tie'/'both_bad') and their mapping to the
pair's a/b, rationale length, and the hashes that key tokens and tasks."""
from __future__ import annotations

import hashlib
import re
import secrets

from prefpipe.errors import PrefpipeError
from prefpipe.vocab import Choice

ORDER_FREE = (Choice.TIE.value, Choice.BOTH_BAD.value)  # the same answer whichever order was shown
SHOWN_CHOICES = ("first", "second", *ORDER_FREE)
MAX_RATIONALE_CHARS = 5000
MAX_TOKEN_CHARS = 512
ANNOTATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class AnnotationError(PrefpipeError, ValueError):
    """An annotator id, answer, rationale or queue request that can't be used; says what to change."""


def check_annotator_id(annotator_id: str | None) -> str:
    """The id itself if it is a valid annotator id, else AnnotationError saying what is allowed."""
    if not ANNOTATOR_ID.match(annotator_id or ""):
        raise AnnotationError(f"annotator id {annotator_id!r}: use 1-64 letters, digits, '_', '.', '@' "
                              "or '-', starting with a letter or digit")
    return annotator_id


def check_shown_choice(choice_shown: str) -> str:
    if choice_shown not in SHOWN_CHOICES:
        raise AnnotationError(f"choice {choice_shown!r} is not one of {SHOWN_CHOICES}")
    return choice_shown


def clean_rationale(rationale: str | None) -> str | None:
    """Stripped, None when empty; AnnotationError when longer than MAX_RATIONALE_CHARS."""
    rationale = (rationale or "").strip() or None
    if rationale is not None and len(rationale) > MAX_RATIONALE_CHARS:
        raise AnnotationError(f"rationale has {len(rationale)} characters; keep it under "
                              f"{MAX_RATIONALE_CHARS}")
    return rationale


def new_token() -> str:
    """A fresh sign-in token (only its `token_hash` is ever stored)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def task_id(pair_id: str, annotator_id: str) -> str:
    return hashlib.sha256(f"{pair_id}\0{annotator_id}".encode()).hexdigest()[:20]


def to_pair_choice(choice_shown: str, shown_order: str) -> str:
    """'first'/'second' as shown -> 'a'/'b' of the pair; 'tie' and 'both_bad' are order-free."""
    check_shown_choice(choice_shown)
    if choice_shown in ORDER_FREE:
        return choice_shown
    return "a" if (choice_shown == "first") == (shown_order == "ab") else "b"


def to_shown_choice(choice: str, shown_order: str) -> str:
    """The inverse of `to_pair_choice`."""
    if choice in ORDER_FREE:
        return choice
    return "first" if (choice == "a") == (shown_order == "ab") else "second"
