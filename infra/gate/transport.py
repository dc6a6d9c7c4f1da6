"""How the gate talks HTTP: loopback-only plain-HTTP bearer policies, error classes, throttling.

azure-core refuses to send a bearer token over plain HTTP; tests point the real clients at a
local server, so :class:`LoopbackBearerPolicy` sets the documented ``enforce_https=False``
request option for loopback hosts only, never for a remote host. :func:`is_transient` decides
what is worth another read: throttling, a server error, or no answer at all; an authentication
error never is (a credential that failed once fails again, and retrying it to the deadline only
hides the cause). :func:`retry_after` reads ARM's throttling headers so the gate waits as long
as ARM asked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

__all__ = [
    "LoopbackBearerPolicy",
    "LoopbackLogsBearerPolicy",
    "describe",
    "is_auth_error",
    "is_loopback",
    "is_transient",
    "retry_after",
]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})
_RETRY_HEADERS = ("retry-after-ms", "x-ms-retry-after-ms", "retry-after")


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _LOOPBACK


class LoopbackBearerPolicy(ARMChallengeAuthenticationPolicy):
    """ARM bearer policy that also allows ``http://`` to a loopback host (local test servers)."""

    def on_request(self, request: PipelineRequest[Any]) -> None:
        if is_loopback(request.http_request.url):
            request.context["enforce_https"] = False
        super().on_request(request)


class LoopbackLogsBearerPolicy(BearerTokenCredentialPolicy):  # type: ignore[type-arg]
    """Log Analytics bearer policy with the same loopback-only exception."""

    def on_request(self, request: PipelineRequest[Any]) -> None:
        if is_loopback(request.http_request.url):
            request.context["enforce_https"] = False
        super().on_request(request)


def describe(exc: BaseException) -> str:
    """``Type (HTTP status): first line`` of an exception, for reasons and timelines."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    text = (
        str(getattr(exc, "message", None) or exc).splitlines()[0]
        if str(exc)
        else type(exc).__name__
    )
    return f"{type(exc).__name__}{f' (HTTP {status})' if status else ''}: {text}"


def is_auth_error(exc: BaseException) -> bool:
    """A credential that could not get a token, or ARM refusing the one it got."""
    if isinstance(exc, ClientAuthenticationError):
        return True
    return isinstance(exc, HttpResponseError) and exc.status_code == 401


def is_transient(exc: BaseException) -> bool:
    """Worth another read: throttling, a server error, or no answer at all; never an auth error."""
    if is_auth_error(exc):
        return False
    if isinstance(exc, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, HttpResponseError):
        return exc.status_code is None or exc.status_code in _TRANSIENT_HTTP
    return False


def retry_after(exc: BaseException) -> float | None:
    """Seconds ARM asked to wait (``Retry-After`` in seconds, or the ``-ms`` variants)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    for name in _RETRY_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue  # an HTTP date: rare on ARM; the poll interval applies
        return seconds / 1000 if name.endswith("-ms") else seconds
    return None
