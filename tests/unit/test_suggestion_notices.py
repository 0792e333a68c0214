"""What officials are told of a newly published city's partner suggestions: only suggestions scoring at least their
own minimum, one notice per official, the new city's officials pointed to its partners and a partner's to the pair."""

from citypair_identity.notifications import mail_kind, suggestion_notice
from citypair_shared.events import SuggestionsFound

FOUND = SuggestionsFound(
    city_id="new",
    name="Almaty",
    suggestions=[
        {"city_id": "p1", "name": "Xi'an", "score": 0.9},
        {"city_id": "p2", "name": "Urumqi", "score": 0.6},
    ],
)


def test_the_new_citys_officials_hear_of_its_best_partner_above_their_minimum():
    assert suggestion_notice(FOUND, {"new"}, 0.5) == ("New partner suggestion: Xi'an", "/cities/new/partners")
    assert suggestion_notice(FOUND, {"new"}, 0.95) is None


def test_a_partners_officials_hear_of_the_new_city_where_its_score_reaches_theirs():
    assert suggestion_notice(FOUND, {"p2"}, 0.6) == ("New partner suggestion: Almaty", "/pairs/p2/new")
    assert suggestion_notice(FOUND, {"p2"}, 0.61) is None
    # an official of two suggested partners: the best one that reaches their minimum
    assert suggestion_notice(FOUND, {"p2", "p1"}, 0.0) == ("New partner suggestion: Almaty", "/pairs/p1/new")


def test_officials_of_other_cities_hear_nothing():
    assert suggestion_notice(FOUND, {"elsewhere"}, 0.0) is None


def test_suggestions_are_their_own_mail_kind():
    assert mail_kind(SuggestionsFound.event_type, decides=False) == "partner_suggestions"
