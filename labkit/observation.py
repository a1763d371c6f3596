"""What an observer saw: the one shape both observers return and the report reads.

The port-forward poller (:mod:`labkit.poller`) and the in-pod probe
(:mod:`labkit.probe`) watch the served file in different ways, but each hands
back an :class:`Observation`: every served line with the bounds of when it was
first served, the producer's copy of the file, and how observation went.
:class:`Answers` is the bookkeeping of answers and failed polls that both
keep while they watch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labkit.checks import Ending

__all__ = ["Answers", "Gap", "Observation"]


@dataclass(frozen=True)
class Gap:
    """A stretch without an answer from the server, in ns on the observer's clock, and the polls that failed in it."""

    start_ns: int = 0
    end_ns: int = 0
    failed_polls: int = 0

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@dataclass(frozen=True)
class Observation:
    """What one observation of the served file saw, ready to be joined with what was written.

    ``lines[i]`` was first served in the answer that arrived at
    ``served_ns[i]`` and was not there when the poll before it was sent, at
    ``visible_after_ns[i]``: the line became visible between the two. The
    first ``preexisting`` lines were there at the first answer, written
    before anyone watched. Times are ns on the clock that stamped the
    answers (this machine's through a port-forward, the pod's in the pod).

    ``written`` is the producer's copy of the file, read by exec just before
    the last poll (``copy_read_ns``), or None when it could not be read (the
    pod went, or the user stopped the run). ``ended`` says how observation
    ended and ``elapsed`` how long it took, in seconds.

    The lists are not to be changed once an observer returns it: the
    report copies what it trims.
    """

    lines: list[str] = field(default_factory=list)
    served_ns: list[int] = field(default_factory=list)
    visible_after_ns: list[int] = field(default_factory=list)
    preexisting: int = 0
    written: str | None = None
    ended: Ending = "done"
    elapsed: float = 0.0
    polls: int = 0
    failed_polls: int = 0
    not_found: int = 0  # polls answered 403/404 before the file first appeared
    bytes_received: int = 0
    reconnects: int = 0  # times the answers stopped and a new connection was opened
    longest_gap: Gap = Gap()
    started_ns: int = 0  # when observation began and ended, on the clock of served_ns
    ended_ns: int = 0
    copy_read_ns: int = 0  # when the producer's copy was read, on the same clock (0: not known)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not len(self.lines) == len(self.served_ns) == len(self.visible_after_ns):
            raise ValueError(
                "lines, served_ns and visible_after_ns must have one entry per served line, not "
                f"{len(self.lines)}, {len(self.served_ns)} and {len(self.visible_after_ns)}"
            )
        if not 0 <= self.preexisting <= len(self.lines):
            raise ValueError(f"preexisting must count some of the {len(self.lines)} lines, not {self.preexisting}")

    @property
    def observed(self) -> int:
        """Lines first served while watching (not there at the first answer)."""
        return len(self.lines) - self.preexisting


class Answers:
    """The answers to the polls as they come: failed polls, and the longest stretch the server left unanswered.

    The server is silent from the moment a request is sent that it does not
    answer at once: a stretch in which the observer itself asked nothing
    (its own process stalled on a busy machine) is not the server's, so each
    answer's gap runs from the later of the previous answer and the sending
    of the first request still unanswered (a failed poll's, or this answer's
    own). Without send times, gaps run from answer to answer. The wait for
    the first answer is not a gap: setting up the first connection (a
    tunnel's handshake) is not an outage of the server. At the end, the time
    since the last answer (or, with none, since the start) counts.
    """

    def __init__(self, started_ns: int = 0) -> None:
        self.started_ns = started_ns
        self.failed = 0
        self.last_answer_ns = 0
        self.longest = Gap()
        self._missed_since_answer = 0
        self._unanswered_since_ns = 0

    def answered(self, now_ns: int, sent_ns: int | None = None) -> None:
        """The server answered at ``now_ns`` the request sent at ``sent_ns``: close the stretch that ends here."""
        if self.last_answer_ns:
            asked = self._unanswered_since_ns or sent_ns
            self._close_gap(now_ns, max(self.last_answer_ns, asked or 0))
        self.last_answer_ns = now_ns
        self._missed_since_answer = 0
        self._unanswered_since_ns = 0

    def missed(self, sent_ns: int | None = None) -> None:
        """A poll sent at ``sent_ns`` got no answer."""
        self.failed += 1
        self._missed_since_answer += 1
        if not self._unanswered_since_ns and sent_ns:
            self._unanswered_since_ns = sent_ns

    def finish(self, now_ns: int) -> None:
        """Observation ended at ``now_ns``: the stretch since the last answer counts up to here."""
        self._close_gap(now_ns, self.last_answer_ns or self.started_ns or now_ns)

    def _close_gap(self, now_ns: int, since: int) -> None:
        if now_ns - since > self.longest.end_ns - self.longest.start_ns:
            self.longest = Gap(since, now_ns, self._missed_since_answer)
