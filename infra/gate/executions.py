"""Job executions as ARM's JSON says them, whatever the installed SDK's model layout.

azure-mgmt-appcontainers moved the execution's fields between releases: 3.x and 4.x flatten them
(``execution.status``, no ``message``), 5.0 nests them under ``properties`` without ``message``,
5.1 adds it. Reading attributes ties the gate to one layout (it crashed on every other one after
starting the execution). So the gate reads the REST document instead: the raw response body where
the SDK lets a ``cls`` callback see it (:func:`raw_body`), and otherwise the model serialized back
to its REST form (:func:`rest_json`). Statuses are plain strings: a value outside the published
enum (ARM adds some) is kept as it is and treated as not finished.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "FAILED_STATUSES",
    "SUCCEEDED",
    "Execution",
    "execution_of",
    "is_terminal",
    "raw_body",
    "rest_json",
]

SUCCEEDED = "Succeeded"
FAILED_STATUSES: Mapping[str, str] = {
    "Failed": "execution-failed",
    "Stopped": "execution-stopped",
    "Degraded": "execution-degraded",
}


def is_terminal(status: str | None) -> bool:
    return status == SUCCEEDED or status in FAILED_STATUSES


@dataclass(frozen=True)
class Execution:
    """The fields of one execution the gate uses."""

    name: str
    status: str
    message: str | None
    start_time: datetime | None


def _text(value: Any) -> str | None:
    # a str-enum member (older SDKs) or a plain string
    value = getattr(value, "value", value)
    return value if isinstance(value, str) and value else None


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    text = _text(value)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def execution_of(doc: Mapping[str, Any]) -> Execution:
    """An execution from its REST JSON (``{name, properties: {status, message, startTime}}``)."""
    props = doc.get("properties")
    props = props if isinstance(props, Mapping) else {}
    return Execution(
        name=_text(doc.get("name")) or "",
        status=_text(props.get("status")) or "Unknown",
        message=_text(props.get("message")),
        start_time=_moment(props.get("startTime")),
    )


def rest_json(model: Any) -> dict[str, Any]:
    """The REST document of an SDK model: typespec models (5.x) ARE it, msrest ones serialize it."""
    if model is None:
        return {}
    if isinstance(model, Mapping):
        as_dict = getattr(model, "as_dict", None)
        data = as_dict() if callable(as_dict) else dict(model)
    else:
        serialize = getattr(model, "serialize", None)
        data = serialize(keep_readonly=True) if callable(serialize) else {}
    # round-trip: datetimes and enums become the JSON strings ARM sent
    loaded = json.loads(json.dumps(data, default=str))
    return loaded if isinstance(loaded, dict) else {}


def raw_body(pipeline_response: Any, _deserialized: Any, _headers: Any) -> dict[str, Any]:
    """A ``cls=`` callback for SDK operations: the response's JSON body as sent ({} when none)."""
    response = getattr(pipeline_response, "http_response", pipeline_response)
    try:
        text = response.text()
    except Exception:  # no body at all (HEAD-like answers)
        return {}
    if not text or not text.strip():
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
