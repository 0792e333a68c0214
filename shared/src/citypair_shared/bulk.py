"""Bulk work (a whole import) in a worker process of its own, at a lower CPU priority.

An import parses, validates and writes tens of thousands of rows: in the service's own process it held the GIL and
the event loop for seconds at a time, and every other request waited behind it (issue 13: the directory's p99 went
from 41 to ~200 ms during a 2 MB import). In a process of its own, niced, the operating system gives the service's
requests the CPU first, and the import takes what is left. The worker is started at the first import (spawned: a
fork of a process running an event loop and threads is unsafe) and kept, one per service process, so imports are
taken one at a time; it writes through its own engine, to the same database, in one transaction as before.
"""

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from citypair_shared.db import create_engine, create_session_factory
from citypair_shared.idempotency import Claim

T = TypeVar("T")
NICENESS = 10  # below the service's requests, above nothing else
PARENT_CHECK_SECONDS = 1.0

_pool: ProcessPoolExecutor | None = None


def _start_worker(service_pid: int) -> None:
    """In the worker: a lower priority, and an end when the service that started it is gone. A service killed with
    SIGKILL cannot stop its worker, which would wait for work forever (it holds its queue's pipes itself): each
    restart of a killed service left one behind, 120 MB each."""
    os.nice(NICENESS)
    threading.Thread(target=_end_without, args=(service_pid,), name="end-without-service", daemon=True).start()


def _end_without(service_pid: int) -> None:
    while os.getppid() == service_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)  # orphaned: nobody is left to take the result of any work


async def in_worker(work: Callable[..., T], /, *args) -> T:
    """`work(*args)` in the worker process (both must pickle: a module-level function and plain values)."""
    global _pool
    if _pool is None:
        context = multiprocessing.get_context("spawn")
        _pool = ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),))
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, work, *args)
    except BrokenProcessPool:
        # The worker died (killed, out of memory): this import failed, and without a new worker every later one
        # would fail the same way until the service restarted.
        shutdown()
        raise


async def in_worker_claiming(claim: Claim | None, work: Callable[..., tuple[T, Claim | None]], /, *args) -> T:
    """`work(claim, *args)` in the worker process, where `with_session` writes the request's Idempotency-Key claim
    with the effect; the claim here learns whether that transaction committed (the service keeps the response)."""
    result, worked = await in_worker(work, claim, *args)
    if claim is not None:
        claim.committed = worked.committed
    return result


def shutdown() -> None:
    """Stop the worker, if one was started (the service is stopping)."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def with_session(
    database_url: str, use_case: Callable[..., Awaitable[T]], claim: Claim | None = None
) -> tuple[T, Claim | None]:
    """Run `use_case(session=…)` on an engine of the worker's own (called in the worker process). The request's
    Idempotency-Key claim is written in the same transaction as the effect, as the service's own session does; it
    comes back to say whether that transaction committed (the service then keeps the response for retries)."""

    async def run() -> T:
        engine = create_engine(database_url)
        try:
            async with create_session_factory(engine)() as session:
                if claim is not None:
                    claim.attach(session)
                return await use_case(session=session)
        finally:
            await engine.dispose()

    return asyncio.run(run()), claim
