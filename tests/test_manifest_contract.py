"""Manifests that a cluster accepts run on every engine, or are refused naming the field.

Podman 4.3's ``kube play`` refuses some Pods that Kubernetes runs; the
Podman engine translates them (:mod:`labkit.engines.podman_yaml`) and the
manifest loader leaves out what a cluster wrote (:func:`labkit.manifest.strip_server_fields`).
Each test runs once per engine, as in ``test_engine_contract.py``.
"""

from __future__ import annotations

import pytest
import yaml

import labkit
from labkit import lifecycle
from labkit.errors import ManifestError, ReadyTimeout
from labkit.manifest import parse_pod
from tests.engine_params import ENGINES

pytestmark = pytest.mark.parametrize("engine", ENGINES)


def _seed_with(seed, change) -> labkit.manifest.Pod:
    doc = yaml.safe_load(seed.read_text())
    change(doc)
    return parse_pod(yaml.safe_dump(doc), source=f"{seed.name} (changed)")


def test_annotation_longer_than_63_characters(engine, seed, make_engine):
    value = '{"note": "' + "a long annotation value, as kubectl writes for last-applied-configuration " * 4 + '"}'
    assert len(value) > 250
    pod = _seed_with(seed, lambda d: d["metadata"].setdefault("annotations", {}).update({"example.com/note": value}))
    with labkit.Lab(pod, engine=make_engine(engine), name=f"long-note-{engine}", progress=False) as lab:
        lab.apply().wait_ready(timeout=120)
        assert lab.wait_serving().fetch().startswith(lab.name + " ")
    assert lab.pod.annotations["example.com/note"] == value  # the kit still sees it
    # never silent: the local engine says what it left out, a cluster takes the pod as it is
    named = [c for c in lab.changes if "example.com/note" in c]
    assert len(named) == (1 if lab.engine.name == "podman" else 0)


def test_manifest_saved_with_kubectl_get(engine, test_manifest, make_engine):
    saved = labkit.manifest.load_pod(test_manifest("saved-seed-pod.yaml"))
    assert "metadata.managedFields (set by the server)" in saved.ignored
    with labkit.Lab(saved, engine=make_engine(engine), name=f"saved-{engine}", progress=False) as lab:
        lab.apply().wait_ready(timeout=120)
        assert lab.wait_serving().fetch().startswith(lab.name + " ")


def test_volume_podman_cannot_provide(engine, seed, make_engine):
    def nfs(doc):
        doc["spec"]["volumes"][0] = {"name": "webcontent", "nfs": {"server": "127.0.0.1", "path": "/labkit"}}

    lab = labkit.Lab(_seed_with(seed, nfs), engine=make_engine(engine), name=f"nfs-{engine}", progress=False)
    field = r"spec.volumes\[0\] \('webcontent'\): nfs"
    try:
        if engine == "podman":
            # Refused before anything is created.
            with pytest.raises(ManifestError, match=field + ".*use emptyDir"):
                lab.apply()
            assert not lifecycle.exists(lab.engine, lab.pod)
        elif engine == "kubernetes":
            # The API accepts the pod; the stand-in's kubelet plays it on Podman, which refuses it,
            # so it never starts and the wait quotes the event naming the field.
            lab.apply()
            with pytest.raises(ReadyTimeout, match=field):
                lab.wait_ready(timeout=3)
        else:
            # A real kubelet cannot mount a share from a server that is not there: the pod never starts.
            lab.apply()
            with pytest.raises(ReadyTimeout):
                lab.wait_ready(timeout=20)
    finally:
        lab.delete()
