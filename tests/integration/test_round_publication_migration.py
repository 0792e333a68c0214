"""matching's migration 0006: rounds stored before it keep their unmatched cities, with the reasons as keys."""

import json

from alembic import command
from sqlalchemy import create_engine, text

from citypair_shared.db import sync_url
from citypair_shared.migrations import alembic_config
from citypair_shared.services import SERVICE_BY_NAME
from citypair_shared.vocabulary import UnmatchedReason
from tests.support import fresh_database_url, query

# What rounds.py wrote before the reasons became UnmatchedReason keys.
BEFORE = [
    {"city_id": "a", "name": "A", "reason": "at capacity"},
    {"city_id": "b", "name": "B", "reason": "no allowed partner in the round with score ≥ 0.3"},
    {"city_id": "c", "name": "C", "reason": "its candidates were paired with others for a higher total"},
]


def test_old_unmatched_reasons_become_keys_and_rounds_start_unpublished(tmp_path):
    service = SERVICE_BY_NAME["matching"].directory
    url = fresh_database_url("matching", tmp_path)
    config = alembic_config(service, url)
    command.upgrade(config, "0005")
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO match_round (id, created_by, request, pairs, unmatched, total_score, method, "
                "weights_version) VALUES ('r1', 'u', '{}', '[]', :unmatched, 0, 'exact', 'w')"
            ),
            {"unmatched": json.dumps(BEFORE)},
        )
    engine.dispose()
    command.upgrade(config, "head")
    [(unmatched, published_at)] = query(url, "SELECT unmatched, published_at FROM match_round WHERE id = 'r1'")
    unmatched = json.loads(unmatched) if isinstance(unmatched, str) else unmatched
    assert [u["reason"] for u in unmatched] == [
        UnmatchedReason.at_capacity,
        UnmatchedReason.no_allowed_partner,
        UnmatchedReason.paired_elsewhere,
    ]
    assert [u["city_id"] for u in unmatched] == ["a", "b", "c"] and published_at is None
