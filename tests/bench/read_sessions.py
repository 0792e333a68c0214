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
import sys
from functools import partial
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))  # turns.py beside this file
from turns import best_by_turns, per_call, print_ratio  # noqa: E402

from citypair_shared.db import create_engine, create_session_factory  # noqa: E402

STATEMENT = text("SELECT count(*) FROM pg_class WHERE relname LIKE :pattern")


async def two_statements(factory) -> None:
    """One session of `factory` with a directory page's two statements."""
    async with factory() as session:
        await session.execute(STATEMENT, {"pattern": "%a%"})
        await session.execute(STATEMENT, {"pattern": "%b%"})


async def main(url: str, sessions: int, runs: int) -> None:
    engine = create_engine(url)
    factories = {
        "transaction": create_session_factory(engine),
        "autocommit": create_session_factory(engine.execution_options(isolation_level="AUTOCOMMIT")),
    }
    sessions_of = {name: partial(two_statements, factory) for name, factory in factories.items()}
    try:
        for call in sessions_of.values():
            await per_call(call, sessions // 10)  # connections opened, statements prepared
        best = await best_by_turns(sessions_of, sessions, runs, "session")
    finally:
        await engine.dispose()
    print_ratio(best, "transaction", "autocommit")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("CITYPAIR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--postgres", default=default, help="a PostgreSQL server URL (default: the local one)")
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = args.postgres.replace("postgresql://", "postgresql+asyncpg://", 1)
    asyncio.run(main(url, args.sessions, args.runs))
