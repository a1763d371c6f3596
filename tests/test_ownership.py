"""Whose pod is it: the decisions (pure), and real sessions in separate processes on Podman."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import labkit
from labkit import lifecycle, ownership
from labkit.errors import PodExists
from labkit.manifest import parse_pod

POD = parse_pod("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: x}]}\n")


def _labels(pod):
    return dict(pod.doc["metadata"]["labels"])


def test_decisions():
    mine = ownership.stamp(POD, "s1")
    assert ownership.decide(None, mine, where="here") == "absent"
    assert ownership.decide(_labels(mine), mine, where="here") == "same"
    changed = ownership.stamp(mine.with_env({"a": {"X": "1"}}), "s1")
    assert ownership.decide(_labels(mine), changed, where="here") == "replace"
    with pytest.raises(PodExists, match=r"not created by labkit.*replace=True"):
        ownership.decide({}, mine, where="here")
    assert ownership.decide({}, mine, where="here", replace=True) == "replace"


def test_another_live_process_keeps_its_pod_and_an_ended_one_does_not():
    theirs = _labels(ownership.stamp(POD, "s2"))
    mine = ownership.stamp(POD, "s1")
    theirs[ownership.OWNER_LABEL] = ownership.owner().rpartition(".")[0] + f".{os.getppid()}"  # alive
    with pytest.raises(PodExists, match="in use by another labkit session"):
        ownership.decide(theirs, mine, where="here")
    theirs[ownership.OWNER_LABEL] = "some-other-host.1"  # cannot be checked: assumed alive
    with pytest.raises(PodExists):
        ownership.decide(theirs, mine, where="here")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    theirs[ownership.OWNER_LABEL] = ownership.owner().rpartition(".")[0] + f".{gone.pid}"
    assert ownership.decide(theirs, mine, where="here") == "replace"


def test_owns_only_the_same_session():
    mine = ownership.stamp(POD, "s1")
    assert ownership.owns(_labels(mine), mine)
    assert not ownership.owns(_labels(ownership.stamp(POD, "s2")), mine)
    assert not ownership.owns({}, mine)


HOLDER = """
import sys, time, labkit
lab = labkit.Lab(sys.argv[1], name="owned-elsewhere", engine="podman", progress=False)
lab.apply().wait_ready()
print("ready", flush=True)
if sys.argv[2] == "hold":
    time.sleep(600)
"""


@pytest.mark.podman
def test_sessions_in_other_processes(seed):
    engine = labkit.get_engine("podman")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(seed), "hold"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        lab = labkit.Lab(seed, engine=engine, name="owned-elsewhere", progress=False)
        with pytest.raises(PodExists, match="in use by another labkit session"):
            lab.apply()
        assert lifecycle.exists(engine, lab.pod)  # untouched
        holder.send_signal(signal.SIGKILL)  # a crashed kernel: no cleanup runs
        holder.wait()
        with lab:
            lab.apply()  # the leftover of an ended session is replaced
            assert lab.exec("hostname").stdout.strip() == "owned-elsewhere"
        assert not lifecycle.exists(engine, lab.pod)
    finally:
        holder.kill()
        subprocess.run(["podman", "pod", "rm", "-f", "owned-elsewhere"], capture_output=True)


@pytest.mark.podman
def test_a_process_that_ends_without_deleting_leaves_nothing(seed):
    done = subprocess.run(
        [sys.executable, "-c", HOLDER, str(seed), "exit"], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "ready", done.stderr
    deadline = time.monotonic() + 5
    while subprocess.run(["podman", "pod", "exists", "owned-elsewhere"]).returncode == 0:
        assert time.monotonic() < deadline, "the pod outlived the process that applied it"
        time.sleep(0.2)


@pytest.mark.podman
def test_a_session_that_reads_as_a_number_still_owns_its_pod(seed):
    # YAML readers take 30159254e13 for a float; the label must stay the string it was.
    engine = labkit.get_engine("podman")
    pod = ownership.stamp(labkit.load_pod(seed).renamed("numeric-session"), "30159254e13")
    lifecycle.apply(engine, pod)
    try:
        lifecycle.delete(engine, pod, 60)
        assert not lifecycle.exists(engine, pod)
    finally:
        subprocess.run(["podman", "pod", "rm", "-f", "numeric-session"], capture_output=True)
