"""The directory's filters read narrow indexes. Theme filters are counted from the theme-level index, not by probing
every city's themes (at 60,000 cities that probe took 166 ms of every `offers=ai:3` request on SQLite, the index
17 ms; on PostgreSQL, vacuumed, 44 → 20 ms), and where themes are all a filter asks, from that index alone (25.7 →
1.5 ms at 60,000 cities on SQLite). The plans are SQLite's: PostgreSQL's planner chooses by the table's
statistics, and an empty table has none worth the name."""

import pytest
from sqlalchemy import create_engine

from citypair_profiles.schemas import SortKey
from citypair_profiles.service import _SORTS, DirectoryFilter, directory_count, directory_query
from citypair_shared.db import sync_url
from citypair_shared.migrations import upgrade
from citypair_shared.services import SERVICE_BY_NAME


@pytest.mark.parametrize("column", ["offer", "need"])
@pytest.mark.parametrize("with_country", [False, True], ids=["themes alone", "and a country"])
def test_a_theme_level_is_counted_from_its_index(column, with_country, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'profiles.db'}"
    upgrade(SERVICE_BY_NAME["profiles"].directory, url)
    wanted = DirectoryFilter(**{f"{column}s": (("ai", 3),)}, country="KZ" if with_country else None)
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        plan = _plan(conn, directory_count(wanted), engine)
    engine.dispose()
    assert f"ix_city_theme_theme_{column}" in plan, plan
    # Themes alone: the city table is not read at all.
    assert ("city " in plan.replace("city_theme", "")) is with_country, plan


def _sql(query, engine) -> str:
    return str(query.compile(engine, compile_kwargs={"literal_binds": True}))


def test_names_are_searched_in_their_own_index(tmp_path):
    """`q` is a substring of any name (no index can seek it): the count scans a narrow index, not the table's wide rows
    (57 → 20 ms for a count and a page at 60,000 cities on SQLite), and the page reads that index in name order."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'profiles.db'}"
    upgrade(SERVICE_BY_NAME["profiles"].directory, url)
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        count = _plan(conn, directory_count(DirectoryFilter(q="xi'an")), engine)
        page = _plan(
            conn, directory_query(DirectoryFilter(q="xi'an")).order_by(*_SORTS[SortKey.name]).limit(20), engine
        )
    engine.dispose()
    assert "COVERING INDEX ix_city_name_search" in count, count
    assert "ix_city_name_search" in page and "TEMP B-TREE" not in page, page


def _plan(conn, query, engine) -> str:
    return " ".join(str(row) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {_sql(query, engine)}"))


def test_a_country_is_paged_in_name_order_from_its_index(tmp_path):
    """A country's page is a range of (country_code, name, id), read in order and stopped at its last row: no sort
    of all the country's cities (at 60,000 cities on SQLite, 3,800 of them read whole and sorted a page)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'profiles.db'}"
    upgrade(SERVICE_BY_NAME["profiles"].directory, url)
    engine = create_engine(sync_url(url))
    page = directory_query(DirectoryFilter(country="kz")).order_by(*_SORTS[SortKey.name]).limit(20)
    with engine.connect() as conn:
        plan = _plan(conn, page, engine)
    engine.dispose()
    assert "ix_city_country_name" in plan and "TEMP B-TREE" not in plan, plan
