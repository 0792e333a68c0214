"""The stale sweep in the background: once every `stale_sweep_seconds` across all replicas, while they run."""

import asyncio
import contextlib
from datetime import timedelta

from citypair_pilot_zones import service
from citypair_pilot_zones.models import JobSlot
from citypair_shared.logging import get_logger
from citypair_shared.runtime import Runtime
from citypair_shared.schedule import take_slot

log = get_logger(__name__)


def stale_after(runtime: Runtime) -> timedelta:
    return timedelta(days=runtime.settings.stale_after_days)


async def sweep_once(runtime: Runtime):
    async with runtime.session_factory() as session:
        return await service.sweep_stale(session=session, relay=runtime.relay, stale_after=stale_after(runtime))


async def run(runtime: Runtime, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=runtime.settings.stale_sweep_seconds)
        if stop.is_set():
            break
        try:
            if not await take_slot(
                runtime.session_factory, JobSlot, "stale-sweep", period_seconds=runtime.settings.stale_sweep_seconds
            ):
                continue  # another replica sweeps this period
            report = await sweep_once(runtime)
            if report.flagged or report.cleared:
                log.info("pilot_zones.stale_sweep", flagged=report.flagged, cleared=report.cleared)
        except Exception as exc:  # the database is away: the next sweep tries again
            log.warning("pilot_zones.stale_sweep_failed", error=repr(exc))


async def start(runtime: Runtime) -> None:
    """A `Runtime.on_start` hook: the sweep is one of the runtime's tasks, stopped with it."""
    runtime._tasks.append(asyncio.create_task(run(runtime, runtime._stop), name="stale-sweep"))
