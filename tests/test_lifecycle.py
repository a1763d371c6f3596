"""The lifecycle's own decisions on plain pod states, through the fake engine (fast)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from labkit import lifecycle
from labkit.engines.base import ContainerState, PodState
from labkit.engines.fake import FakeEngine, Script
from labkit.errors import ContainerCrashed, PodGone
from labkit.manifest import load_pod

STOPPED = {
    "producer": ContainerState("producer", "terminated", "Error", exit_code=137),
    "consumer": ContainerState("consumer", "terminated", "Error", exit_code=137),
}


def _settled(engine: FakeEngine, seed, state: PodState, monkeypatch: pytest.MonkeyPatch) -> lifecycle.Settling:
    pod = load_pod(seed)
    monkeypatch.setattr(engine, "state", lambda _pod: state)  # the state under test, as the engine saw it
    settling = lifecycle.Settling(engine, pod, {}, seconds=0)
    settling.stop()
    return settling


def test_containers_that_stopped_after_ready_are_a_crash(seed, monkeypatch):
    settling = _settled(FakeEngine(Script()), seed, PodState(STOPPED, phase="Running"), monkeypatch)
    assert isinstance(settling.error, ContainerCrashed)


@pytest.mark.parametrize(
    ("state", "said"),
    [
        (
            PodState(
                STOPPED, phase="Failed", reason="Evicted", message='Usage of EmptyDir volume "w" exceeds the limit'
            ),
            r"was evicted \(Usage of EmptyDir volume",
        ),
        (PodState(STOPPED, phase="Running", deleting_since=datetime.now(UTC)), r"is being deleted"),
    ],
)
def test_a_pod_evicted_or_being_deleted_is_gone_not_crashed(seed, state, said, monkeypatch):
    settling = _settled(FakeEngine(Script()), seed, state, monkeypatch)
    assert settling.error is None
    with pytest.raises(PodGone, match=said):
        lifecycle.container_states(settling.engine, settling.pod)
