"""Sign-in throttling, counted in identity's database so that every replica sees the same attempts.

The policy (docs/security.md, "Sign-in throttling"):
- one account from one address: `account_failures` attempts go through freely; after them each attempt makes
  the next one wait, `first_wait` at first and twice as long each time up to `max_wait` (by default 1 s, 2 s,
  4 s … 15 min). A success from that address forgets them, and so does a `window` without attempts after a wait;
- one account from every address: once it has `account_wide_failures` failures within a window, an address
  that has failed on it has only one free attempt, so it waits from then on; an address that has not is
  never held back on it: nobody can lock the owner out by guessing;
- one address on any account: `address_attempts` attempts per window, then it waits for the window's end.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_identity.config import Settings
from citypair_identity.models import SigninCounter
from citypair_shared.db import upsertable_insert

ANY = ""  # as the account or the address: the counter covers every one


@dataclass(frozen=True)
class Allowance:
    """Attempts that go through freely; after them, each attempt makes the next wait twice as long."""

    free: int
    first_wait: timedelta
    max_wait: timedelta

    def wait_after(self, attempts: int) -> timedelta:
        """How long the next attempt waits once `attempts` have been made."""
        if attempts < self.free:
            return timedelta(0)
        wait = self.first_wait
        for _ in range(attempts - self.free):
            if wait >= self.max_wait:
                break
            wait *= 2
        return min(wait, self.max_wait)


@dataclass(frozen=True)
class Policy:
    per_account_and_address: Allowance
    under_attack: Allowance  # per account and address, once the account has `account_wide_failures`
    account_wide_failures: int
    address_attempts: int
    window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> "Policy":
        waits = (
            timedelta(seconds=settings.signin_first_wait_seconds),
            timedelta(seconds=settings.signin_max_wait_seconds),
        )
        return cls(
            per_account_and_address=Allowance(settings.signin_account_failures, *waits),
            under_attack=Allowance(1, *waits),
            account_wide_failures=settings.signin_account_wide_failures,
            address_attempts=settings.signin_address_attempts,
            window=timedelta(seconds=settings.signin_window_seconds),
        )


async def admit(session: AsyncSession, *, account: str, address: str, now: datetime, policy: Policy) -> timedelta:
    """Count an attempt against its address and against its account from that address, both or neither, before
    its password is checked (so that guesses sent at once cannot all pass before the first has failed).

    Returns zero if it may go on, else how long it must wait; a refused attempt is not counted.
    """
    await _prune(session, now)
    attempts, window_ends = await _count(session, ANY, address, now=now, window=policy.window)
    if attempts > policy.address_attempts:
        wait = window_ends - now
    else:
        allowance = policy.per_account_and_address
        if await _failures(session, account, now) >= policy.account_wide_failures:
            allowance = policy.under_attack
        wait = await _claim(session, account, address, now=now, allowance=allowance, policy=policy)
    if wait:
        await session.rollback()  # its count on the address too
    else:
        await session.commit()
    return wait


async def record_failure(session: AsyncSession, *, account: str, now: datetime, policy: Policy) -> None:
    """Count a wrong password on `account`, from whatever address (committed by the caller)."""
    await _count(session, account, ANY, now=now, window=policy.window)


async def forget(session: AsyncSession, *, account: str, address: str) -> None:
    """A success from this address: its attempts on the account no longer count (committed by the caller)."""
    await session.execute(
        delete(SigninCounter).where(SigninCounter.account == account, SigninCounter.address == address)
    )


async def _prune(session: AsyncSession, now: datetime) -> None:
    """Delete the forgotten counters, skipping any that another attempt holds (it is counting on it anew):
    so a sign-in never waits here, nor in a cycle with another one."""
    forgotten = (
        select(SigninCounter.account, SigninCounter.address)
        .where(SigninCounter.expires_at <= now)
        .with_for_update(skip_locked=True)
    )
    await session.execute(
        delete(SigninCounter).where(tuple_(SigninCounter.account, SigninCounter.address).in_(forgotten))
    )
    await session.commit()


async def _count(
    session: AsyncSession, account: str, address: str, *, now: datetime, window: timedelta
) -> tuple[int, datetime]:
    """One more in a fixed window that its first count starts: the count in the window, and the window's end.

    A single upsert, so counts made at once in any number of replicas are all counted.
    """
    first = upsertable_insert(session, SigninCounter).values(
        account=account, address=address, attempts=1, last_attempt_at=now, expires_at=now + window
    )
    ended = SigninCounter.expires_at <= now
    counted = first.on_conflict_do_update(
        index_elements=[SigninCounter.account, SigninCounter.address],
        set_={
            "attempts": case((ended, 1), else_=SigninCounter.attempts + 1),
            "expires_at": case(
                (ended, literal(now + window, SigninCounter.expires_at.type)), else_=SigninCounter.expires_at
            ),
            "last_attempt_at": now,
        },
    ).returning(SigninCounter.attempts, SigninCounter.expires_at)
    return tuple((await session.execute(counted)).one())


async def _failures(session: AsyncSession, account: str, now: datetime) -> int:
    failures = await session.scalar(
        select(SigninCounter.attempts).where(
            SigninCounter.account == account, SigninCounter.address == ANY, SigninCounter.expires_at > now
        )
    )
    return failures or 0


async def _claim(
    session: AsyncSession, account: str, address: str, *, now: datetime, allowance: Allowance, policy: Policy
) -> timedelta:
    """Count one attempt on the account from this address, unless it must wait first (then return the wait).

    Runs while the address's counter, which `admit` wrote first, is locked until its transaction ends: the
    attempts of one address are counted one at a time, whichever replica they reach, and none slips past the
    wait that another one's count calls for.
    """
    seen = (
        await session.execute(
            select(SigninCounter.attempts, SigninCounter.last_attempt_at, SigninCounter.expires_at).where(
                SigninCounter.account == account, SigninCounter.address == address
            )
        )
    ).one_or_none()
    made = 0 if seen is None or seen.expires_at <= now else seen.attempts
    wait = allowance.wait_after(made)
    # A free attempt never waits, not even when it read the clock before the last one was counted.
    if wait and (left := seen.last_attempt_at + wait - now) > timedelta(0):
        return left
    values = {
        "attempts": made + 1,
        "last_attempt_at": now,
        # Kept until the longest wait it may call for (the account may come under attack) is a window past.
        "expires_at": now + policy.under_attack.wait_after(made + 1) + policy.window,
    }
    insert = upsertable_insert(session, SigninCounter).values(account=account, address=address, **values)
    await session.execute(
        insert.on_conflict_do_update(index_elements=[SigninCounter.account, SigninCounter.address], set_=values)
    )
    return timedelta(0)


async def over_limit(
    session: AsyncSession, *, account: str, address: str, limit: int, now: datetime, window: timedelta
) -> timedelta:
    """Count one request on the counter (`account`, `address`): zero while it is within `limit` requests in its
    window, else how long until the window ends (uncommitted: the caller commits or rolls back)."""
    attempts, window_ends = await _count(session, account, address, now=now, window=window)
    return window_ends - now if attempts > limit else timedelta(0)
