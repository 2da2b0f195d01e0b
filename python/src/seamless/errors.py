"""Typed exceptions: one class per error code of the HTTP API, plus transport failures.

Every exception is a :class:`SeamlessError`. Errors the server answered with are
:class:`ServerError` subclasses carrying the code, the HTTP status, the server's message
and the error document's details (``node_id``, ``missing``, ``phase``, ``report``, …);
failures before an answer arrived (unreachable, timed out, cut short, not a Seamless
server) carry the URL and the underlying cause. A caller never sees a bare ``KeyError``,
``json.JSONDecodeError`` or ``urllib`` exception.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Type

__all__ = [
    "SeamlessError",
    "TransportError",
    "ConnectionFailed",
    "Timeout",
    "MalformedResponse",
    "IncompatibleServer",
    "ServerError",
    "MisdirectedHost",
    "BadRequest",
    "Unauthorized",
    "UnknownSource",
    "CoverageIncomplete",
    "NotCovered",
    "NotFound",
    "MethodNotAllowed",
    "NotAcceptable",
    "DomainPolicyError",
    "RequestTooLarge",
    "ConformanceError",
    "SchemaViolation",
    "TooManyRequests",
    "InternalError",
    "UpstreamFailed",
    "Canceled",
    "Unavailable",
    "SLAExceeded",
    "BackfillFailed",
    "error_class",
]


class SeamlessError(Exception):
    """Base of every exception the client raises.

    ``url`` is the request's URL (None for errors found before a request was made) and
    ``cause`` the lower-level exception, if any (also chained as ``__cause__``).
    """

    def __init__(self, message: str, *, url: Optional[str] = None, cause: Optional[BaseException] = None):
        super().__init__(message)
        self.message = message
        self.url = url
        self.cause = cause

    def __str__(self) -> str:
        text = self.message
        if self.url:
            text += f" [{self.url}]"
        if self.cause is not None:
            text += f" (cause: {type(self.cause).__name__}: {self.cause})"
        return text


class TransportError(SeamlessError):
    """No usable answer arrived: the server is unreachable, too slow, or hung up."""


class ConnectionFailed(TransportError, ConnectionError):
    """The connection could not be made or broke before the answer was complete."""


class Timeout(TransportError, TimeoutError):
    """The server did not answer within the client's timeout."""


class MalformedResponse(SeamlessError):
    """The server answered, but not with a document this client can read (a proxy's
    HTML page, a truncated stream, a missing field)."""


class IncompatibleServer(SeamlessError):
    """The server's ``/healthz`` names an API major version this client does not speak
    (or none: not a Seamless server, or one older than API 1.0)."""

    def __init__(self, message: str, *, url: Optional[str] = None, api_version: Optional[str] = None):
        super().__init__(message, url=url)
        self.api_version = api_version


class ServerError(SeamlessError):
    """The server answered with an error document ``{"error": {"code", "message", …}}``.

    ``code`` is the SPEC §2 / docs/api.md error code, ``status`` the HTTP status,
    ``details`` the whole error object (every field the server sent), and
    ``retry_after`` the seconds of a ``Retry-After`` header (None without one).
    """

    code = "internal"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        details: Optional[Dict[str, Any]] = None,
        url: Optional[str] = None,
        retry_after: Optional[float] = None,
    ):
        super().__init__(message, url=url)
        if code is not None:
            self.code = code
        self.status = status
        self.details: Dict[str, Any] = dict(details or {})
        self.retry_after = retry_after

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status else ""
        where = f" [{self.url}]" if self.url else ""
        return f"{self.code}{status}: {self.message}{where}"

    # Details most callers want, by name. Absent ones are None.
    @property
    def node_id(self) -> Optional[str]:
        return self.details.get("node_id")

    @property
    def interval(self) -> Optional[int]:
        return self.details.get("interval")


class BadRequest(ServerError, ValueError):
    """400: a malformed parameter, node id, interval or range (also raised before any
    request for arguments the client can check itself). ``field`` names the parameter."""

    code = "bad_request"

    @property
    def field(self) -> Optional[str]:
        return self.details.get("field")


class Unauthorized(ServerError, PermissionError):
    """401: auth is on and the token is missing or wrong."""

    code = "unauthorized"


class UnknownSource(ServerError, LookupError):
    """404: no source serves the node id."""

    code = "unknown_source"


class CoverageIncomplete(ServerError, LookupError):
    """404 ``not_covered``: ``fail_fast`` without ``partial_ok`` found missing ranges,
    listed in ``missing`` as half-open ``(start, end)`` pairs."""

    code = "not_covered"

    @property
    def missing(self) -> List[Tuple[int, int]]:
        return [(int(r["start"]), int(r["end"])) for r in self.details.get("missing") or []]


#: The name the library and the Go client use for CoverageIncomplete.
NotCovered = CoverageIncomplete


class NotFound(ServerError, LookupError):
    """404: no such route or backfill job (finished jobs are kept for an hour)."""

    code = "not_found"


class MethodNotAllowed(ServerError):
    """405: the route exists with other methods."""

    code = "method_not_allowed"


class NotAcceptable(ServerError):
    """406: the Accept header names no format the server has."""

    code = "not_acceptable"


class DomainPolicyError(ServerError):
    """409 ``domain_policy``: backtest/dryrun without ``as_of`` or artifact-backed data."""

    code = "domain_policy"

    @property
    def domain(self) -> Optional[str]:
        return self.details.get("domain")

    @property
    def reason(self) -> Optional[str]:
        return self.details.get("reason")


class RequestTooLarge(ServerError):
    """413: the request body is over the server's limit."""

    code = "request_too_large"


class ConformanceError(ServerError):
    """422 ``conformance_blocked``: blocking conformance findings and not ``partial_ok``.
    ``report`` is the conformance report, ``blocking`` the flags that blocked."""

    code = "conformance_blocked"

    @property
    def report(self) -> Optional[Dict[str, Any]]:
        return self.details.get("report")

    @property
    def blocking(self) -> List[str]:
        return list(self.details.get("blocking") or [])


class SchemaViolation(ServerError):
    """422: the node's schema is in strict mode and the payload deviates from it."""

    code = "schema_violation"


class TooManyRequests(ServerError):
    """429: the server is at its fetch or job limit. The client has already waited
    ``retry_after`` seconds and retried as often as ``Client(retries=…)`` allows."""

    code = "too_many_requests"


class InternalError(ServerError):
    """500: a store or other internal failure on the server."""

    code = "internal"


class UpstreamFailed(ServerError):
    """502 ``upstream_failed``: a backfill chunk failed after retries. ``chunk`` is the
    half-open range, ``attempts`` how often it was tried, ``cause_text`` the upstream's
    error."""

    code = "upstream_failed"

    @property
    def chunk(self) -> Optional[Tuple[int, int]]:
        c = self.details.get("chunk")
        return (int(c["start"]), int(c["end"])) if c else None

    @property
    def attempts(self) -> Optional[int]:
        return self.details.get("attempts")

    @property
    def cause_text(self) -> Optional[str]:
        return self.details.get("cause")


class Canceled(ServerError):
    """503 ``canceled``: the server gave up on the request (shutting down, or its own
    deadline passed); retrying later is fine."""

    code = "canceled"


class Unavailable(ServerError):
    """503 ``unavailable``: the server is not ready (store or coordinator down)."""

    code = "unavailable"


class SLAExceeded(ServerError, TimeoutError):
    """504 ``sla_exceeded``: a phase budget ran out under ``on_violation=fail_fast``.
    ``phase``, ``elapsed_ms`` and ``budget_ms`` say which and by how much; for the
    ``sync_gap`` phase ``sla_violation`` holds ``missing_bars`` and ``budget_bars``."""

    code = "sla_exceeded"

    @property
    def phase(self) -> Optional[str]:
        return self.details.get("phase") or (self.details.get("sla_violation") or {}).get("phase")

    @property
    def elapsed_ms(self) -> Optional[float]:
        return self.details.get("elapsed_ms")

    @property
    def budget_ms(self) -> Optional[int]:
        return self.details.get("budget_ms")

    @property
    def sla_violation(self) -> Optional[Dict[str, Any]]:
        return self.details.get("sla_violation")


class MisdirectedHost(ServerError):
    """421 ``misdirected_host``: a server without API tokens answers only requests
    addressed to its own address, localhost or an IP (DNS-rebinding protection); set
    SEAMLESS_ALLOWED_HOSTS on the server, or use one of those addresses."""

    code = "misdirected_host"


class BackfillFailed(ServerError):
    """A backfill job ended ``failed`` or ``cancelled`` with an error of a code that has
    no class of its own; ``job`` is the final job. (A job failed by upstream errors
    raises :class:`UpstreamFailed`, also with ``job`` set.)"""

    code = "backfill_failed"


_BY_CODE: Dict[str, Type[ServerError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        UnknownSource,
        CoverageIncomplete,
        NotFound,
        MethodNotAllowed,
        NotAcceptable,
        DomainPolicyError,
        RequestTooLarge,
        ConformanceError,
        SchemaViolation,
        TooManyRequests,
        InternalError,
        UpstreamFailed,
        Canceled,
        Unavailable,
        SLAExceeded,
        MisdirectedHost,
    )
}

# The code an answer that is not an error document gets, by status (as the Go
# client's wire.ReadError does).
_CODE_OF_STATUS = {401: "unauthorized", 404: "not_found", 429: "too_many_requests", 503: "unavailable"}


def error_class(code: str) -> Type[ServerError]:
    """The exception class of an error code; :class:`ServerError` for codes this client
    does not know (a newer server's), so they are still typed and catchable."""
    return _BY_CODE.get(code, ServerError)


def code_of_status(status: int) -> str:
    return _CODE_OF_STATUS.get(status, "internal")


def known_codes() -> List[str]:
    return sorted(_BY_CODE)
