"""What a transaction around a read's statements costs, in-process (a script, not a test).

    .venv/bin/python tests/bench/read_sessions.py [--postgres URL] [--sessions 2000] [--runs 3]

Opens sessions as the services do (`create_session_factory`) and runs two small statements in each, as a directory
page does (its page and its count): with a transaction around them (`deps.SessionDep`: BEGIN … ROLLBACK) and without
(`deps.ReadSessionDep`: the same pool in autocommit), by turns. Prints the CPU and wall time a session of each (the
best of the runs) and the ratio.
"""

import argparse
import asyncio
import os
import time

from sqlalchemy import text

from citypair_shared.db import create_engine, create_session_factory

STATEMENT = text("SELECT count(*) FROM pg_class WHERE relname LIKE :pattern")


async def measure(factory, sessions: int) -> tuple[float, float]:
    """CPU and wall milliseconds a session of `factory`."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(sessions):
        async with factory() as session:
            await session.execute(STATEMENT, {"pattern": "%a%"})
            await session.execute(STATEMENT, {"pattern": "%b%"})
    return (time.process_time() - cpu) / sessions * 1e3, (time.perf_counter() - wall) / sessions * 1e3


async def main(url: str, sessions: int, runs: int) -> None:
    engine = create_engine(url)
    factories = {
        "transaction": create_session_factory(engine),
        "autocommit": create_session_factory(engine.execution_options(isolation_level="AUTOCOMMIT")),
    }
    try:
        for factory in factories.values():
            await measure(factory, sessions // 10)  # connections opened, statements prepared
        best = {name: (float("inf"), float("inf")) for name in factories}
        for _ in range(runs):
            for name, factory in factories.items():
                cpu, wall = await measure(factory, sessions)
                print(f"{name:12} cpu {cpu:.3f} ms  wall {wall:.3f} ms a session")
                best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
    finally:
        await engine.dispose()
    (cpu_tx, wall_tx), (cpu_ac, wall_ac) = best["transaction"], best["autocommit"]
    print(f"best: transaction cpu {cpu_tx:.3f} / wall {wall_tx:.3f} ms, autocommit {cpu_ac:.3f} / {wall_ac:.3f} ms")
    print(f"autocommit ÷ transaction: cpu {cpu_ac / cpu_tx:.2f}, wall {wall_ac / wall_tx:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("CITYPAIR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--postgres", default=default, help="a PostgreSQL server URL (default: the local one)")
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = args.postgres.replace("postgresql://", "postgresql+asyncpg://", 1)
    asyncio.run(main(url, args.sessions, args.runs))
