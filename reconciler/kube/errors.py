"""HTTP failures from the apiserver, translated into nicpool's errors in ONE place.

Callers decide by class, as everywhere in nicpool: a TemporaryError
(connection refused, timeouts, 409 on a write race, 429, 5xx, 410 on a
watch) is retried with backoff; a PermanentError (404, 403, 422, 400) is
reported and retried only slowly, in case the world changes.
"""

from __future__ import annotations

import json

from store.errors import PermanentError, TemporaryError


class KubeUnavailable(TemporaryError):
    reason = "ApiServerUnavailable"


class KubeConflict(TemporaryError):
    """409: someone wrote first (resourceVersion or UID precondition failed)."""

    reason = "ApiConflict"


class AlreadyExists(KubeConflict):
    reason = "AlreadyExists"


class Gone(TemporaryError):
    """410: the watch's resourceVersion is too old; relist."""

    reason = "Expired"


class NotFound(PermanentError):
    reason = "NotFound"


class Forbidden(PermanentError):
    reason = "Forbidden"


class Rejected(PermanentError):
    """400/422: the apiserver refuses the object (schema, validation)."""

    reason = "Rejected"


def from_status(status: int, body: bytes | str, what: str) -> Exception:
    """The nicpool error for an HTTP status answered to ``what``."""
    message = f"{what}: HTTP {status}: {_message(body)}"
    if status == 404:
        return NotFound(message)
    if status in {401, 403}:
        return Forbidden(message)
    if status == 409:
        if "AlreadyExists" in str(body):
            return AlreadyExists(message)
        return KubeConflict(message)
    if status == 410:
        return Gone(message)
    if status in (400, 422):
        return Rejected(message)
    delay = 1.0 if status == 429 else None
    return KubeUnavailable(message, delay=delay)


def _message(body: bytes | str) -> str:
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(doc, dict):
        return str(doc.get("message") or doc.get("reason") or text[:300])
    return text[:300]
