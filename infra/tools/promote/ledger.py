"""Which release deploys where: resolve, verify, configure and accept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra.errors import ReleaseError
from infra.release import AcceptedRelease, Release, authorize, find

from .backend import (
    EXIT_REFUSED,
    EXIT_USAGE,
    KEY_ACCEPT,
    KEY_FROM,
    KEY_IMAGE,
    KEY_REPLAY,
    KEY_SHA,
    LEDGER_OUTPUT,
    Backend,
    PromoteError,
    _recent,
    check_image,
    check_sha,
)


@dataclass(frozen=True)
class Resolution:
    stack: str
    sha: str
    image: str
    source: str

    def to_json(self) -> dict[str, str]:
        return {"stack": self.stack, "sha": self.sha, "image": self.image, "source": self.source}


def _ledgers(
    backend: Backend, stack: str, upstream: str | None
) -> tuple[tuple[AcceptedRelease, ...], str | None, tuple[AcceptedRelease, ...]]:
    source = upstream or backend.promotes_from(stack)
    return backend.ledger(stack), source, (backend.ledger(source) if source else ())


def _authorized(
    sha: str, image: str | None, stack: str, own: Sequence[AcceptedRelease],
    source: str | None, upstream: Sequence[AcceptedRelease], replay: bool,
) -> AcceptedRelease:
    """The ledger entry that lets ``stack`` deploy ``sha``, by the program's own rule."""
    candidate = (find(own, sha) if replay else None) or find(upstream, sha)
    release = Release(sha, image or (candidate.image if candidate else ""))
    try:
        entry = authorize(release, stack=stack, own=own, upstream=upstream,
                          promotes_from=source, replay=replay)
    except ReleaseError as exc:
        recent = f"latest accepted on {stack}: {_recent(own)}"
        if source:
            recent += f"; on {source}: {_recent(upstream)}"
        raise ReleaseError(exc.code, f"{exc.message} ({recent})", **exc.context) from exc
    if entry is None:  # authorize needs no ledger only for a first stage's fresh build
        raise PromoteError("no-upstream", f"stack {stack} promotes from no stack; a replay needs "
                           "the release in its own ledger", EXIT_REFUSED, stack=stack)
    return entry


def resolve(
    backend: Backend,
    stack: str,
    sha: str | None = None,
    image: str | None = None,
    upstream: str | None = None,
    replay: bool = False,
) -> Resolution:
    """Which release ``stack`` deploys: a fresh build, an upstream acceptance, or a replay."""
    if sha is not None:
        check_sha(sha)
    if image and not replay:
        if sha is None:
            raise PromoteError("usage", "--image needs --sha (the commit it was built from)",
                               EXIT_USAGE)
        return Resolution(stack, sha, check_image(image), "build")
    own, source, upstream_ledger = _ledgers(backend, stack, upstream)
    if replay:
        if sha is None:
            raise PromoteError("usage", "a replay needs --sha", EXIT_USAGE)
        entry = _authorized(sha, image, stack, own, source, upstream_ledger, replay=True)
        return Resolution(stack, entry.sha, check_image(entry.image), f"replay:{stack}")
    if not source:
        raise PromoteError(
            "no-upstream",
            f"stack {stack} promotes from no stack ({KEY_FROM} unset) and no --image was "
            "given; pass --image for a first stage or --from for a promotion",
            EXIT_USAGE,
            stack=stack,
        )
    if sha is None:
        if not upstream_ledger:
            raise PromoteError("ledger-empty", f"upstream stack {source} has accepted no "
                               "release yet; deploy it there first", EXIT_REFUSED, stack=source)
        sha = upstream_ledger[-1].sha
    entry = _authorized(sha, None, stack, own, source, upstream_ledger, replay=False)
    return Resolution(stack, entry.sha, check_image(entry.image), f"promote:{source}")


def verify(
    backend: Backend, stacks: Sequence[str], sha: str, latest: bool = False
) -> AcceptedRelease:
    """Refuse ``sha`` unless every stack may replay it, all with one image (the same artifact).

    ``latest``: instead, require ``sha`` to be the newest entry of each stack's own ledger (what
    a completed stage leaves behind).
    """
    check_sha(sha)
    found: list[tuple[str, AcceptedRelease]] = []
    for stack in stacks:
        own, source, upstream_ledger = _ledgers(backend, stack, None)
        if latest:
            if not own or own[-1].sha != sha:
                raise ReleaseError(
                    "release-not-recorded",
                    f"release {sha} is not the latest accepted release of stack {stack} "
                    f"(latest: {_recent(own)}); the acceptance update did not record it",
                    sha=sha, stack=stack)
            found.append((stack, own[-1]))
        else:
            found.append((stack, _authorized(sha, None, stack, own, source, upstream_ledger,
                                             replay=True)))
    images = {entry.image for _, entry in found}
    if len(images) > 1:
        detail = ", ".join(f"{s}={e.image}" for s, e in found)
        raise ReleaseError("release-image-mismatch", f"release {sha} was accepted with different "
                           f"images ({detail}); refusing an ambiguous artifact", sha=sha)
    return found[-1][1]


def preview_outputs(backend: Backend, stack: str) -> dict[str, Any]:
    """Stack outputs for the offline preview (``--stack-outputs``): the upstream has accepted
    the release committed in the stack file, so the preview exercises the program and the
    policy pack rather than the promotion rule (which only real ledgers can answer)."""
    config = backend.stack_file_config(stack)
    source = backend.promotes_from(stack)
    sha, image = config.get(KEY_SHA), config.get(KEY_IMAGE)
    if not source:
        return {}
    if not (sha and image):
        raise PromoteError("usage", f"Pulumi.{stack}.yaml sets no {KEY_SHA}/{KEY_IMAGE}",
                           EXIT_USAGE, stack=stack)
    entry = AcceptedRelease(str(sha), str(image), "1970-01-01T00:00:00Z")
    return {source: {LEDGER_OUTPUT: [entry.as_output()]}}


def configure(backend: Backend, stack: str, sha: str, image: str, replay: bool = False) -> None:
    """Set the release for the next ``pulumi up``; clears acceptance so the up cannot accept."""
    check_sha(sha)
    check_image(image)
    backend.config_set(stack, KEY_SHA, sha)
    backend.config_set(stack, KEY_IMAGE, image)
    backend.config_set(stack, KEY_REPLAY, "true" if replay else "false")
    backend.config_rm(stack, KEY_ACCEPT)


def accept(backend: Backend, stack: str, sha: str) -> None:
    """Mark the configured release accepted; the next ``pulumi up`` appends it to the ledger."""
    check_sha(sha)
    configured = backend.config_get(stack, KEY_SHA)
    if configured != sha:
        raise PromoteError(
            "release-mismatch",
            f"stack {stack} is configured for release {configured or '(none)'}, not {sha}; "
            "run `python -m infra.tools.promote configure` for this release first",
            EXIT_REFUSED,
            stack=stack,
        )
    backend.config_set(stack, KEY_ACCEPT, sha)


# -- drift ---------------------------------------------------------------------------------------
