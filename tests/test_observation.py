"""Tests for labkit.observation's Answers: the server's silence, not the observer's, on plain numbers."""

from __future__ import annotations

from labkit.observation import Answers, Gap

MS = 1_000_000


def test_an_observer_that_stalled_while_the_server_answered_every_request_at_once_leaves_no_gap():
    answers = Answers(started_ns=0)
    answers.answered(2 * MS, sent_ns=0)
    answers.answered(302 * MS, sent_ns=300 * MS)  # nothing was asked for 0.3 s; answered in 2 ms
    answers.answered(307 * MS, sent_ns=305 * MS)
    answers.finish(308 * MS)
    assert answers.longest.seconds < 0.01 and answers.failed == 0


def test_a_server_that_held_a_request_for_0_3_s_is_a_gap_of_0_3_s():
    answers = Answers(started_ns=0)
    answers.answered(2 * MS, sent_ns=0)
    answers.answered(307 * MS, sent_ns=7 * MS)  # sent at once, answered 0.3 s later
    answers.finish(310 * MS)
    assert answers.longest == Gap(7 * MS, 307 * MS, 0)


def test_failed_polls_count_from_the_first_unanswered_request():
    answers = Answers(started_ns=0)
    answers.answered(2 * MS, sent_ns=0)
    answers.missed(sent_ns=100 * MS)
    answers.missed(sent_ns=200 * MS)
    answers.answered(402 * MS, sent_ns=400 * MS)
    assert answers.longest == Gap(100 * MS, 402 * MS, 2) and answers.failed == 2


def test_without_send_times_gaps_run_from_answer_to_answer_and_the_end_counts():
    answers = Answers(started_ns=0)
    answers.answered(2 * MS)
    answers.answered(302 * MS)
    assert answers.longest == Gap(2 * MS, 302 * MS, 0)
    answers.finish(1002 * MS)  # no answer in the last 0.7 s of observation
    assert answers.longest == Gap(302 * MS, 1002 * MS, 0)
