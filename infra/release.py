"""Promotion and replay: which release a stack may deploy, and its ledger of accepted releases.

Pure functions over plain values (no Pulumi, no I/O), so the program and the CI commands built on
top share one rule set. The contract, in config keys of ``Pulumi.yaml``:

- ``releaseSha`` / ``releaseImage``: the release under deploy (one digest-pinned image per commit).
- ``promotesFrom``: optional upstream stack. The release must be in the upstream's ledger, with
  the same image (staging deploys only what dev accepted; prod only what staging accepted).
- ``replay: true``: redeploy a previously accepted release. The SHA must be in this stack's own
  ledger or the upstream's, and the image must equal the recorded one.
- ``acceptRelease``: when equal to ``releaseSha``, the update appends the release to the ledger
  (CI sets it after the smoke test passed). Appending is idempotent.

The ledger is the stack output ``acceptedReleases``: a list of ``{sha, image, acceptedAt}``, oldest
first, bounded to :data:`LEDGER_LIMIT` entries. The program reads its own previous value through a
``StackReference`` to itself and the upstream's through one to ``promotesFrom``.

API::

    parse_ledger(value) -> tuple[AcceptedRelease, ...]       tolerant of None (a new stack)
    authorize(release, *, stack, own, upstream, promotes_from, replay) -> AcceptedRelease | None
        raises ReleaseError(code) with code one of:
        release-not-promoted   promotesFrom set and the SHA is not in the upstream ledger
        release-not-accepted   replay and the SHA is in neither ledger
        release-image-mismatch the ledger records another image for the SHA
    next_ledger(own, release, *, accept_sha, now) -> tuple[AcceptedRelease, ...]
    ledger_output(ledger) -> list[dict]                      the ``acceptedReleases`` value
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.errors import ReleaseError

__all__ = [
    "LEDGER_LIMIT",
    "AcceptedRelease",
    "Release",
    "authorize",
    "find",
    "ledger_output",
    "next_ledger",
    "parse_ledger",
]

LEDGER_LIMIT = 50


@dataclass(frozen=True)
class Release:
    """The release under deploy."""

    sha: str
    image: str

    def as_output(self) -> dict[str, str]:
        return {"sha": self.sha, "image": self.image}


@dataclass(frozen=True)
class AcceptedRelease:
    """One ledger entry: a release that passed its gate and smoke test on a stack."""

    sha: str
    image: str
    accepted_at: str

    def as_output(self) -> dict[str, str]:
        return {"sha": self.sha, "image": self.image, "acceptedAt": self.accepted_at}


def parse_ledger(value: Any) -> tuple[AcceptedRelease, ...]:
    """Read an ``acceptedReleases`` output; ``None`` (no such output yet) is an empty ledger.

    Malformed entries are refused rather than skipped: a ledger is evidence, and silently
    dropping an entry could turn a refusal into an acceptance elsewhere.
    """
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ReleaseError(
            "release-ledger-invalid", f"acceptedReleases must be a list, got {value!r}"
        )
    entries: list[AcceptedRelease] = []
    for item in value:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item.get(k) for k in ("sha", "image", "acceptedAt")
        ):
            raise ReleaseError(
                "release-ledger-invalid",
                f"acceptedReleases entry {item!r} must have string sha, image and acceptedAt",
            )
        entries.append(AcceptedRelease(item["sha"], item["image"], item["acceptedAt"]))
    return tuple(entries)


def find(ledger: Iterable[AcceptedRelease], sha: str) -> AcceptedRelease | None:
    """The most recent ledger entry for ``sha``, if any."""
    found = None
    for entry in ledger:
        if entry.sha == sha:
            found = entry
    return found


def _check_image(entry: AcceptedRelease, release: Release, where: str) -> AcceptedRelease:
    if entry.image != release.image:
        raise ReleaseError(
            "release-image-mismatch",
            f"release {release.sha} was accepted on {where} with image {entry.image}, but "
            f"releaseImage is {release.image}; deploy the recorded image (same SHA, same bytes)",
            sha=release.sha,
        )
    return entry


def authorize(
    release: Release,
    *,
    stack: str,
    own: Sequence[AcceptedRelease],
    upstream: Sequence[AcceptedRelease],
    promotes_from: str | None,
    replay: bool,
) -> AcceptedRelease | None:
    """Refuse a release this stack may not deploy; return the ledger entry that allows it.

    ``None`` means no ledger was needed (a stack without upstream deploying a new release).
    """
    if replay:
        entry = find(own, release.sha)
        if entry is not None:
            return _check_image(entry, release, f"stack '{stack}'")
        entry = find(upstream, release.sha) if promotes_from else None
        if entry is not None:
            return _check_image(entry, release, f"stack '{promotes_from}'")
        places = f"'{stack}'" + (f" or '{promotes_from}'" if promotes_from else "")
        raise ReleaseError(
            "release-not-accepted",
            f"cannot replay release {release.sha}: it is not in the acceptedReleases of {places}; "
            "pick a SHA from `pulumi stack output acceptedReleases`, or deploy it normally",
            sha=release.sha,
        )
    _refuse_silent_rollback(release, stack=stack, own=own, upstream=upstream,
                            promotes_from=promotes_from)
    if promotes_from:
        entry = find(upstream, release.sha)
        if entry is None:
            raise ReleaseError(
                "release-not-promoted",
                f"release {release.sha} is not accepted on '{promotes_from}', which '{stack}' "
                f"promotes from; deploy it to '{promotes_from}' and pass its smoke test first",
                sha=release.sha,
            )
        return _check_image(entry, release, f"stack '{promotes_from}'")
    return None


def _position(ledger: Sequence[AcceptedRelease], sha: str) -> int | None:
    last = None
    for i, entry in enumerate(ledger):
        if entry.sha == sha:
            last = i
    return last


def _refuse_silent_rollback(
    release: Release,
    *,
    stack: str,
    own: Sequence[AcceptedRelease],
    upstream: Sequence[AcceptedRelease],
    promotes_from: str | None,
) -> None:
    """A release older than what this stack last accepted is a rollback: only a replay may.

    Without this, a stale ``releaseSha`` in a stack file would silently roll the apps (and the
    job's image) back to an old accepted release.
    """
    if not own or own[-1].sha == release.sha:
        return
    current = own[-1].sha
    mine = _position(own, release.sha)
    older = mine is not None
    if promotes_from:
        at, latest_at = _position(upstream, release.sha), _position(upstream, current)
        older = at is not None and latest_at is not None and at < latest_at
    if older:
        raise ReleaseError(
            "release-rollback",
            f"release {release.sha} is older than {current}, the release '{stack}' last "
            "accepted; rolling back needs an explicit replay (set replay: true, or run the "
            "replay workflow)",
            sha=release.sha,
        )


def next_ledger(
    own: Sequence[AcceptedRelease],
    release: Release,
    *,
    accept_sha: str | None,
    now: datetime | None = None,
) -> tuple[AcceptedRelease, ...]:
    """The ledger after this update: ``own``, plus the release when ``accept_sha`` names it.

    Accepting a release already at the end of the ledger changes nothing (re-running the accept
    step is safe); a replayed older release is appended again, so the last entry is what runs.
    """
    ledger = tuple(own)
    if accept_sha is None or accept_sha != release.sha:
        return ledger
    if ledger and ledger[-1].sha == release.sha and ledger[-1].image == release.image:
        return ledger
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ledger = (*ledger, AcceptedRelease(release.sha, release.image, stamp))
    return ledger[-LEDGER_LIMIT:]


def ledger_output(ledger: Iterable[AcceptedRelease]) -> list[dict[str, str]]:
    """The ``acceptedReleases`` stack output value."""
    return [entry.as_output() for entry in ledger]
