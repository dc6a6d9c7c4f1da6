"""Promotion and replay rules (infra.release), pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra import release as rel
from infra.errors import ReleaseError

A = rel.Release("a" * 40, "reg.azurecr.io/app@sha256:" + "1" * 64)
B = rel.Release("b" * 40, "reg.azurecr.io/app@sha256:" + "2" * 64)
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def entry(r: rel.Release, at: str = "2030-01-01T00:00:00Z") -> rel.AcceptedRelease:
    return rel.AcceptedRelease(r.sha, r.image, at)


def authorize(r: rel.Release, *, own=(), upstream=(), promotes_from=None, replay=False):  # type: ignore[no-untyped-def]
    return rel.authorize(
        r, stack="prod", own=own, upstream=upstream, promotes_from=promotes_from, replay=replay
    )


def test_a_stack_without_upstream_deploys_anything() -> None:
    assert authorize(A) is None


def test_promotion_requires_the_upstream_to_have_accepted_the_release() -> None:
    assert authorize(A, upstream=[entry(A)], promotes_from="staging") == entry(A)
    with pytest.raises(ReleaseError) as info:
        authorize(B, upstream=[entry(A)], promotes_from="staging")
    assert info.value.code == "release-not-promoted"
    assert B.sha in str(info.value) and "staging" in str(info.value)


def test_promotion_refuses_another_image_for_the_same_sha() -> None:
    other = rel.Release(A.sha, B.image)
    with pytest.raises(ReleaseError) as info:
        authorize(other, upstream=[entry(A)], promotes_from="staging")
    assert info.value.code == "release-image-mismatch"


def test_replay_uses_own_or_upstream_ledger_with_the_recorded_image() -> None:
    assert authorize(A, own=[entry(A)], replay=True) == entry(A)
    assert authorize(A, upstream=[entry(A)], promotes_from="staging", replay=True) == entry(A)
    with pytest.raises(ReleaseError) as info:
        authorize(B, own=[entry(A)], replay=True)
    assert info.value.code == "release-not-accepted" and "acceptedReleases" in str(info.value)
    with pytest.raises(ReleaseError) as info:
        authorize(rel.Release(A.sha, B.image), own=[entry(A)], replay=True)
    assert info.value.code == "release-image-mismatch"
    # without promotesFrom, an upstream ledger is not consulted
    with pytest.raises(ReleaseError):
        authorize(A, upstream=[entry(A)], replay=True)


def test_accepting_appends_once() -> None:
    ledger = rel.next_ledger((), A, accept_sha=A.sha, now=NOW)
    assert ledger == (rel.AcceptedRelease(A.sha, A.image, "2030-01-02T03:04:05Z"),)
    assert rel.next_ledger(ledger, A, accept_sha=A.sha, now=NOW) == ledger
    assert rel.next_ledger(ledger, B, accept_sha=A.sha, now=NOW) == ledger  # names another release
    assert rel.next_ledger(ledger, B, accept_sha=None, now=NOW) == ledger
    two = rel.next_ledger(ledger, B, accept_sha=B.sha, now=NOW)
    assert [e.sha for e in rel.next_ledger(two, A, accept_sha=A.sha, now=NOW)] == [
        A.sha,
        B.sha,
        A.sha,
    ]


def test_ledger_is_bounded() -> None:
    ledger: tuple[rel.AcceptedRelease, ...] = ()
    for i in range(rel.LEDGER_LIMIT + 5):
        r = rel.Release(f"{i:040x}", A.image)
        ledger = rel.next_ledger(ledger, r, accept_sha=r.sha, now=NOW)
    assert len(ledger) == rel.LEDGER_LIMIT and ledger[-1].sha == f"{rel.LEDGER_LIMIT + 4:040x}"


def test_ledger_round_trips_and_refuses_malformed_entries() -> None:
    ledger = (entry(A), entry(B))
    assert rel.parse_ledger(rel.ledger_output(ledger)) == ledger
    assert rel.parse_ledger(None) == ()
    for bad in ("a", [{"sha": A.sha}], [{"sha": A.sha, "image": "", "acceptedAt": "x"}]):
        with pytest.raises(ReleaseError) as info:
            rel.parse_ledger(bad)
        assert info.value.code == "release-ledger-invalid"


def test_an_older_release_is_a_rollback_that_needs_replay() -> None:
    upstream = (entry(A), entry(B))
    # prod runs B; a stale stack file naming A must not roll it back silently
    with pytest.raises(ReleaseError) as e:
        authorize(A, own=(entry(B),), upstream=upstream, promotes_from="staging")
    assert e.value.code == "release-rollback"
    assert authorize(A, own=(entry(B),), upstream=upstream, promotes_from="staging",
                     replay=True) == entry(A)
    # re-deploying what runs, or promoting forward, is fine
    assert authorize(B, own=(entry(B),), upstream=upstream, promotes_from="staging") == entry(B)
    assert authorize(B, own=(entry(A),), upstream=upstream, promotes_from="staging") == entry(B)
    # a stack without upstream: an older SHA of its own ledger is a rollback too
    with pytest.raises(ReleaseError):
        authorize(A, own=(entry(A), entry(B)))
