"""What the desk decides for ranked candidates: answer, clarify, escalate or invite to a private
message, and the reason an operator reads in the log.

Pure tests: small hand-built knowledge bases and candidate lists, no matcher involved.
"""

from __future__ import annotations

from datetime import date

import pytest

from bot.answering.knowledge import Entry, KnowledgeBase
from bot.answering.matcher import Candidate
from bot.answering.policy import (
    Answer,
    Clarify,
    Context,
    Escalate,
    InvitePrivate,
    PolicyConfig,
    decide,
)

TODAY = date(2026, 1, 15)
PUBLIC = Context(public=True, today=TODAY)
PRIVATE = Context(public=False, today=TODAY)
DEFAULTS = PolicyConfig()


def entry(entry_id: str, **rules: object) -> Entry:
    return Entry(
        id=entry_id,
        topic="Test",
        questions={"en": (f"Question about {entry_id}?",), "zh": (f"关于{entry_id}的问题？",)},
        answer={"en": f"Answer about {entry_id}.", "zh": f"关于{entry_id}的回答。"},
        **rules,  # type: ignore[arg-type]
    )


KB = KnowledgeBase(
    (
        entry("pay-fee"),
        entry("fee-amount"),
        entry("refund"),
        entry("opening-hours"),
        entry("my-case", escalate=True),
        entry("my-bank-account", public=False),
        entry("temporary-hall", valid_until=date(2025, 12, 31)),
        entry("ends-today", valid_until=TODAY),
    )
)


def cand(entry_id: str, score: float) -> Candidate:
    return Candidate(
        entry_id=entry_id, score=score, phrasing=f"Question about {entry_id}?", lang="en"
    )


# --- answer --------------------------------------------------------------------------------


def test_clear_best_match_is_answered_with_a_reason_naming_it() -> None:
    decision = decide([cand("pay-fee", 0.9), cand("fee-amount", 0.4)], KB, PRIVATE, DEFAULTS)

    assert isinstance(decision, Answer)
    assert decision.decision == "answer"
    assert decision.entry.id == "pay-fee"
    assert decision.score == 0.9
    assert "pay-fee" in decision.reason
    assert "0.90" in decision.reason


def test_single_candidate_above_the_threshold_is_answered() -> None:
    decision = decide([cand("opening-hours", 0.8)], KB, PUBLIC, DEFAULTS)

    assert isinstance(decision, Answer)
    assert decision.entry.id == "opening-hours"


def test_a_score_exactly_at_the_threshold_is_answered() -> None:
    config = PolicyConfig(answer_threshold=0.7, answer_margin=0.05)

    decision = decide([cand("pay-fee", 0.7), cand("fee-amount", 0.5)], KB, PRIVATE, config)

    assert isinstance(decision, Answer)


# --- the entry's own serving rules ---------------------------------------------------------


def test_entry_marked_escalate_goes_to_a_human_even_when_it_scores_top() -> None:
    decision = decide([cand("my-case", 0.99), cand("pay-fee", 0.2)], KB, PRIVATE, DEFAULTS)

    assert isinstance(decision, Escalate)
    assert decision.entry is not None and decision.entry.id == "my-case"
    assert "escalate" in decision.reason
    assert "my-case" in decision.reason


def test_private_entry_asked_in_public_invites_a_private_message() -> None:
    decision = decide([cand("my-bank-account", 0.9)], KB, PUBLIC, DEFAULTS)

    assert isinstance(decision, InvitePrivate)
    assert decision.decision == "private"
    assert decision.entry.id == "my-bank-account"
    assert "public" in decision.reason


def test_private_entry_asked_in_private_is_answered() -> None:
    decision = decide([cand("my-bank-account", 0.9)], KB, PRIVATE, DEFAULTS)

    assert isinstance(decision, Answer)
    assert decision.entry.id == "my-bank-account"


@pytest.mark.parametrize("context", [PUBLIC, PRIVATE], ids=["public", "private"])
def test_expired_entry_is_never_answered_however_well_it_matches(context: Context) -> None:
    decision = decide([cand("temporary-hall", 0.99)], KB, context, DEFAULTS)

    assert not isinstance(decision, Answer)
    assert isinstance(decision, Escalate)
    assert "expired" in decision.reason
    assert "2025-12-31" in decision.reason


def test_entry_is_still_served_on_its_last_valid_day() -> None:
    decision = decide([cand("ends-today", 0.9)], KB, PRIVATE, DEFAULTS)

    assert isinstance(decision, Answer)
    assert decision.entry.id == "ends-today"


def test_entry_expires_the_day_after_valid_until() -> None:
    tomorrow = Context(public=False, today=date(2026, 1, 16))

    decision = decide([cand("ends-today", 0.9)], KB, tomorrow, DEFAULTS)

    assert not isinstance(decision, Answer)


# --- clarify -------------------------------------------------------------------------------


def test_two_close_candidates_are_offered_both_in_ranked_order() -> None:
    decision = decide(
        [cand("pay-fee", 0.72), cand("fee-amount", 0.70), cand("refund", 0.2)],
        KB,
        PRIVATE,
        DEFAULTS,
    )

    assert isinstance(decision, Clarify)
    assert decision.decision == "clarify"
    assert [e.id for e in decision.options] == ["pay-fee", "fee-amount"]
    assert "pay-fee" in decision.reason and "fee-amount" in decision.reason


def test_close_candidates_below_the_answer_threshold_are_still_offered() -> None:
    decision = decide([cand("pay-fee", 0.56), cand("fee-amount", 0.55)], KB, PRIVATE, DEFAULTS)

    assert isinstance(decision, Clarify)
    assert {e.id for e in decision.options} == {"pay-fee", "fee-amount"}


def test_expired_entry_is_never_offered_in_a_clarifying_question() -> None:
    decision = decide(
        [cand("pay-fee", 0.60), cand("temporary-hall", 0.59), cand("fee-amount", 0.58)],
        KB,
        PRIVATE,
        DEFAULTS,
    )

    assert isinstance(decision, Clarify)
    assert [e.id for e in decision.options] == ["pay-fee", "fee-amount"]


def test_one_close_candidate_next_to_an_expired_one_is_not_a_choice_of_one() -> None:
    decision = decide([cand("pay-fee", 0.52), cand("temporary-hall", 0.51)], KB, PRIVATE, DEFAULTS)

    assert not isinstance(decision, Clarify)
    assert not isinstance(decision, Answer)


def test_a_clarifying_question_offers_at_most_clarify_max_options() -> None:
    candidates = [
        cand("pay-fee", 0.60),
        cand("fee-amount", 0.59),
        cand("refund", 0.58),
        cand("opening-hours", 0.57),
    ]

    decision = decide(candidates, KB, PRIVATE, PolicyConfig(clarify_max=2))

    assert isinstance(decision, Clarify)
    assert [e.id for e in decision.options] == ["pay-fee", "fee-amount"]


def test_candidates_far_below_the_best_are_not_offered() -> None:
    decision = decide(
        [cand("pay-fee", 0.60), cand("fee-amount", 0.59), cand("refund", 0.40)],
        KB,
        PRIVATE,
        DEFAULTS,
    )

    assert isinstance(decision, Clarify)
    assert "refund" not in [e.id for e in decision.options]


# --- escalate ------------------------------------------------------------------------------


def test_low_score_escalates_with_a_reason_about_the_threshold() -> None:
    candidates = [cand("pay-fee", 0.3), cand("refund", 0.1)]

    decision = decide(candidates, KB, PRIVATE, DEFAULTS)

    assert isinstance(decision, Escalate)
    assert "threshold" in decision.reason
    assert "pay-fee" in decision.reason
    # The staff member who picks it up sees what the matcher thought.
    assert [c.entry_id for c in decision.candidates] == ["pay-fee", "refund"]


def test_no_candidates_escalates() -> None:
    decision = decide([], KB, PUBLIC, DEFAULTS)

    assert isinstance(decision, Escalate)
    assert decision.decision == "escalate"
    assert decision.entry is None
    assert decision.reason


def test_candidates_of_entries_no_longer_in_the_knowledge_base_are_ignored() -> None:
    decision = decide([cand("deleted-entry", 0.95)], KB, PRIVATE, DEFAULTS)

    assert isinstance(decision, Escalate)
    assert decision.entry is None


def test_high_score_without_margin_and_nothing_to_offer_escalates() -> None:
    # Both close and above the answer threshold, but only one may be served: no 1-option menu.
    decision = decide(
        [cand("pay-fee", 0.8), cand("fee-amount", 0.79)],
        KB,
        PRIVATE,
        PolicyConfig(clarify_max=1),
    )

    assert isinstance(decision, Escalate)
    assert "0.01" in decision.reason


# --- configuration -------------------------------------------------------------------------


def test_a_lower_answer_threshold_answers_what_the_default_escalates() -> None:
    candidates = [cand("pay-fee", 0.45), cand("refund", 0.1)]

    assert isinstance(decide(candidates, KB, PRIVATE, DEFAULTS), Escalate)
    lenient = PolicyConfig(answer_threshold=0.4)
    decision = decide(candidates, KB, PRIVATE, lenient)
    assert isinstance(decision, Answer)
    assert decision.entry.id == "pay-fee"


def test_a_higher_answer_threshold_escalates_what_the_default_answers() -> None:
    candidates = [cand("pay-fee", 0.7), cand("refund", 0.1)]

    assert isinstance(decide(candidates, KB, PRIVATE, DEFAULTS), Answer)
    strict = PolicyConfig(answer_threshold=0.9)
    assert isinstance(decide(candidates, KB, PRIVATE, strict), Escalate)


def test_a_wider_margin_turns_an_answer_into_a_clarifying_question() -> None:
    candidates = [cand("pay-fee", 0.8), cand("fee-amount", 0.6)]

    assert isinstance(decide(candidates, KB, PRIVATE, DEFAULTS), Answer)
    cautious = PolicyConfig(answer_margin=0.3)
    decision = decide(candidates, KB, PRIVATE, cautious)
    assert isinstance(decision, Clarify)
    assert [e.id for e in decision.options] == ["pay-fee", "fee-amount"]


def test_a_higher_clarify_threshold_stops_offering_weak_candidates() -> None:
    candidates = [cand("pay-fee", 0.56), cand("fee-amount", 0.55)]

    assert isinstance(decide(candidates, KB, PRIVATE, DEFAULTS), Clarify)
    config = PolicyConfig(clarify_threshold=0.6)
    assert isinstance(decide(candidates, KB, PRIVATE, config), Escalate)


# --- only servable entries compete ----------------------------------------------------------


def test_an_expired_runner_up_does_not_stop_a_clear_valid_answer() -> None:
    # 'pay-fee' is the only servable entry and scores well above the threshold; the expired
    # notice that happens to score close behind it can never be served.
    decision = decide(
        [cand("pay-fee", 0.80), cand("temporary-hall", 0.78), cand("refund", 0.30)],
        KB,
        PRIVATE,
        DEFAULTS,
    )

    assert isinstance(decision, Answer)
    assert decision.entry.id == "pay-fee"


def test_the_margin_is_measured_against_the_next_servable_entry() -> None:
    # The expired notice in between is skipped: 'pay-fee' leads 'fee-amount' by only 0.04.
    decision = decide(
        [cand("pay-fee", 0.80), cand("temporary-hall", 0.79), cand("fee-amount", 0.76)],
        KB,
        PRIVATE,
        DEFAULTS,
    )

    assert isinstance(decision, Clarify)
    assert [e.id for e in decision.options] == ["pay-fee", "fee-amount"]


def test_an_expired_entry_does_not_take_a_place_among_the_offered_options() -> None:
    decision = decide(
        [cand("pay-fee", 0.60), cand("temporary-hall", 0.59), cand("fee-amount", 0.58)],
        KB,
        PRIVATE,
        PolicyConfig(clarify_max=2),
    )

    assert isinstance(decision, Clarify)
    assert [e.id for e in decision.options] == ["pay-fee", "fee-amount"]


def test_a_clear_expired_best_match_is_escalated_saying_it_expired() -> None:
    decision = decide(
        [cand("temporary-hall", 0.90), cand("pay-fee", 0.50)],
        KB,
        PRIVATE,
        DEFAULTS,
    )

    assert isinstance(decision, Escalate)
    assert decision.entry is not None and decision.entry.id == "temporary-hall"
    assert "expired on 2025-12-31" in decision.reason


def test_an_unclear_expired_best_match_is_escalated_saying_it_expired() -> None:
    decision = decide([cand("temporary-hall", 0.80), cand("pay-fee", 0.78)], KB, PRIVATE, DEFAULTS)

    assert isinstance(decision, Escalate)
    assert "expired on 2025-12-31" in decision.reason


@pytest.mark.parametrize(("best", "second"), [(0.70, 0.64), (0.69, 0.63), (0.62, 0.56)])
def test_a_lead_of_exactly_the_margin_is_enough_despite_float_rounding(
    best: float, second: float
) -> None:
    assert best - second < 0.06  # 0.0599999...: float rounding, not a smaller lead
    config = PolicyConfig(answer_threshold=0.6, answer_margin=0.06)

    decision = decide([cand("pay-fee", best), cand("fee-amount", second)], KB, PRIVATE, config)

    assert isinstance(decision, Answer)
    assert decision.entry.id == "pay-fee"


def test_a_candidate_exactly_at_the_edge_of_the_clarify_band_is_offered() -> None:
    assert 0.65 - 0.57 > 0.08  # 0.0800...01: float rounding, not a wider gap
    config = PolicyConfig(answer_margin=0.2, clarify_band=0.08)

    decision = decide([cand("pay-fee", 0.65), cand("fee-amount", 0.57)], KB, PRIVATE, config)

    assert isinstance(decision, Clarify)
    assert [e.id for e in decision.options] == ["pay-fee", "fee-amount"]
