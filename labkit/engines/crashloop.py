"""The kubelet's restart back-off, for the engines that imitate a kubelet (the fake engine, the API stand-in).

A kubelet restarts a container that has no back-off entry at once, and only
then records a back-off of 10 s; a crash that follows within the back-off
waits it out in ``CrashLoopBackOff``, and each restart doubles the back-off up
to 300 s. An entry not updated for twice the maximum (10 min) is forgotten, so
a container that ran that long starts again from an immediate restart.

Sources (kubernetes/kubernetes): ``doBackOff`` in
``pkg/kubelet/kuberuntime/kuberuntime_manager.go`` (asks
``IsInBackOffSince(key, finishedAt)``, restarts, then ``Next(key,
finishedAt)``); ``backOffPeriod`` and ``MaxContainerBackOff`` in
``pkg/kubelet/kubelet.go``; ``Next``, ``IsInBackOffSince`` and ``hasExpired``
in ``staging/src/k8s.io/client-go/util/flowcontrol/backoff.go``. The jitter
that client-go can add is 0 for the kubelet's back-off. See docs/facts.md,
"Restarts after a crash".
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["INITIAL_BACKOFF", "MAX_BACKOFF", "CrashLoop"]

INITIAL_BACKOFF = 10.0  # backOffPeriod
MAX_BACKOFF = 300.0  # MaxContainerBackOff


@dataclass
class _Entry:
    backoff: float
    last_update: float


@dataclass
class CrashLoop:
    """Back-off entries per container, as a kubelet keeps them; times are seconds on one clock.

    ``initial`` and ``maximum`` are the kubelet's 10 s and 300 s; fast tests
    of the fake engine scale them down.
    """

    initial: float = INITIAL_BACKOFF
    maximum: float = MAX_BACKOFF
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def hold(self, key: str, finished_at: float, now: float) -> float:
        """Seconds a container that exited at ``finished_at`` must still wait; 0 means restart it now.

        A 0 is the kubelet's decision to restart, so it records the restart
        (``Next``): call it once per restart, and again only after the wait.
        """
        entry = self._entries.get(key)
        if entry is not None and not self._expired(entry, finished_at) and now - finished_at < entry.backoff:
            return finished_at + entry.backoff - now
        if entry is None or self._expired(entry, finished_at):
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.backoff, entry.last_update = min(entry.backoff * 2, self.maximum), now
        return 0.0

    def backoff(self, key: str) -> float:
        """The back-off a crash of ``key`` waits now (0 when none is recorded), as its message shows it."""
        entry = self._entries.get(key)
        return entry.backoff if entry else 0.0

    def _expired(self, entry: _Entry, event_time: float) -> bool:
        return event_time - entry.last_update > 2 * self.maximum
