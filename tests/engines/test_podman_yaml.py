"""The Pod document as Podman 4.3's kube play accepts it: each translation and refusal, on plain data."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from labkit.engines.podman_yaml import SERVICE_ACCOUNT_PATH, for_kube_play, quantity_bytes
from labkit.errors import ManifestError


def pod(volumes=None, annotations=None, **container):
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "ubuntu", **container}]},
    }
    if volumes is not None:
        doc["spec"]["volumes"] = volumes
        doc["spec"]["containers"][0]["volumeMounts"] = [
            {"name": v["name"], "mountPath": f"/mnt/{v['name']}"} for v in volumes
        ]
    if annotations is not None:
        doc["metadata"]["annotations"] = annotations
    return doc


def test_a_plain_pod_is_played_unchanged():
    doc = pod(
        [
            {"name": "data", "emptyDir": {}},
            {"name": "h", "hostPath": {"path": "/tmp"}},
            {"name": "c", "persistentVolumeClaim": {"claimName": "c"}},
        ],
        {"a": "b"},
        imagePullPolicy="IfNotPresent",
    )
    out, changes = for_kube_play(doc)
    assert out == doc and changes == ()
    assert out is not doc


def test_long_annotation_values_are_left_out_short_ones_kept():
    value = '{"apiVersion":"v1","kind":"Pod"' + "x" * 300 + "}"
    doc = pod(
        annotations={
            "kubectl.kubernetes.io/last-applied-configuration": value,
            "kubectl.kubernetes.io/default-container": "a",
            "exactly-63": "y" * 63,
        }
    )
    out, changes = for_kube_play(doc)
    assert out["metadata"]["annotations"] == {"kubectl.kubernetes.io/default-container": "a", "exactly-63": "y" * 63}
    assert len(changes) == 1
    assert "kubectl.kubernetes.io/last-applied-configuration" in changes[0] and "63" in changes[0]
    assert doc["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == value


def test_only_long_annotations_leave_no_empty_mapping():
    out, _ = for_kube_play(pod(annotations={"k": "v" * 64}))
    assert "annotations" not in out["metadata"]


def _with_token_volume(token_volume):
    doc = pod([{"name": "data", "emptyDir": {}}])
    doc["spec"]["containers"].append({"name": "b", "image": "nginx", "volumeMounts": []})
    doc["spec"]["volumes"].append(token_volume)
    for c in doc["spec"]["containers"]:
        c["volumeMounts"].append({"name": token_volume["name"], "mountPath": SERVICE_ACCOUNT_PATH, "readOnly": True})
    return doc


@pytest.mark.parametrize(
    "token_volume",
    [
        {
            "name": "kube-api-access-7q2xk",
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                ],
            },
        },
        {"name": "default-token-abcde", "secret": {"secretName": "default-token-abcde", "defaultMode": 420}},
    ],
    ids=["projected", "legacy-secret"],
)
def test_the_service_account_volume_and_its_mounts_are_left_out(token_volume):
    doc = _with_token_volume(token_volume)
    out, changes = for_kube_play(doc)
    assert [v["name"] for v in out["spec"]["volumes"]] == ["data"]
    assert out["spec"]["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/mnt/data"}]
    assert out["spec"]["containers"][1]["volumeMounts"] == []
    assert len(changes) == 1 and f"spec.volumes[1] ({token_volume['name']!r})" in changes[0]
    assert len(doc["spec"]["volumes"]) == 2  # the input keeps it


def test_a_projected_volume_elsewhere_is_not_taken_for_the_token():
    doc = pod([{"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}])
    with pytest.raises(ManifestError, match=r"spec.volumes\[0\] \('tok'\): projected"):
        for_kube_play(doc)


def test_always_pull_becomes_podmans_default():
    doc = pod(imagePullPolicy="Always")
    doc["spec"]["initContainers"] = [{"name": "init", "image": "ubuntu", "imagePullPolicy": "Always"}]
    out, changes = for_kube_play(doc)
    assert "imagePullPolicy" not in out["spec"]["containers"][0]
    assert "imagePullPolicy" not in out["spec"]["initContainers"][0]
    assert [c.split(".imagePullPolicy")[0] for c in changes] == [
        "spec.initContainers[0] ('init')",
        "spec.containers[0] ('a')",
    ]
    assert doc["spec"]["containers"][0]["imagePullPolicy"] == "Always"


@pytest.mark.parametrize("policy", ["IfNotPresent", "Never"])
def test_other_pull_policies_stay(policy):
    out, changes = for_kube_play(pod(imagePullPolicy=policy))
    assert out["spec"]["containers"][0]["imagePullPolicy"] == policy and changes == ()


def test_a_volume_without_type_is_an_emptydir():
    out, changes = for_kube_play(pod([{"name": "data"}]))
    assert out["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert "spec.volumes[0] ('data')" in changes[0]


@pytest.mark.parametrize(
    ("source", "ref"),
    [
        ({"configMap": {"name": "cfg", "optional": True}}, "'cfg'"),
        ({"secret": {"secretName": "s", "optional": True}}, "'s'"),
    ],
)
def test_optional_configmap_or_secret_is_an_empty_directory(source, ref):
    out, changes = for_kube_play(pod([{"name": "data", **source}]))
    assert out["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert ref in changes[0] and "optional" in changes[0]


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (
            {"name": "data", "nfs": {"server": "10.0.0.1", "path": "/x"}},
            r"spec.volumes\[0\] \('data'\): nfs has no equivalent.*use emptyDir.*LABKIT_ENGINE=kubernetes",
        ),
        ({"name": "data", "downwardAPI": {"items": []}}, r"spec.volumes\[0\] \('data'\): downwardAPI"),
        (
            {"name": "data", "configMap": {"name": "cfg"}},
            r"spec.volumes\[0\] \('data'\): configMap 'cfg' needs a ConfigMap.*optional: true.*LABKIT_ENGINE",
        ),
        ({"name": "data", "secret": {"secretName": "s"}}, r"spec.volumes\[0\] \('data'\): secret 's' needs a Secret"),
        ({"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}, r"more than one type \(emptyDir, hostPath\)"),
    ],
)
def test_volumes_podman_cannot_provide_are_refused_naming_the_field(volume, message):
    doc = pod([volume])
    before = copy.deepcopy(doc)
    with pytest.raises(ManifestError, match=message):
        for_kube_play(doc)
    assert doc == before


def test_every_refused_volume_is_named_with_its_index_in_the_file():
    doc = _with_token_volume({"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {}}]}})
    doc["spec"]["volumes"].insert(0, {"name": "n", "nfs": {"server": "s", "path": "/"}})
    doc["spec"]["volumes"].append({"name": "d", "downwardAPI": {}})
    with pytest.raises(ManifestError) as info:
        for_kube_play(doc)
    assert "spec.volumes[0] ('n'): nfs" in str(info.value)
    assert "spec.volumes[3] ('d'): downwardAPI" in str(info.value)
    assert "kube-api-access" not in str(info.value)


def test_the_saved_seed_manifest_is_played_as_the_seed(test_manifest, seed):
    from labkit.manifest import load_pod

    saved = load_pod(test_manifest("saved-seed-pod.yaml"))
    before = yaml.safe_dump(saved.doc)
    out, changes = for_kube_play(saved.doc)
    assert yaml.safe_dump(saved.doc) == before
    assert len(changes) == 4  # the long annotation, the token volume, two pull policies
    assert "annotations" not in out["metadata"]
    assert out["spec"]["volumes"] == load_pod(seed).doc["spec"]["volumes"]
    for c in out["spec"]["containers"]:
        assert [m["name"] for m in c["volumeMounts"]] == ["webcontent"]


def test_a_document_must_be_a_mapping():
    with pytest.raises(TypeError, match="mapping"):
        for_kube_play(["not", "a", "pod"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "size"),
    [("64Mi", 64 * 2**20), ("1Gi", 2**30), ("1.5Gi", 3 * 2**29), ("500M", 500 * 10**6), ("2e6", 2 * 10**6),
     ("1k", 1000), (".5Ki", 512), ("100m", 1), ("0", 0), (4096, 4096)],
)  # fmt: skip
def test_quantities_are_read_as_kubernetes_reads_them(text, size):
    assert quantity_bytes(text) == size


@pytest.mark.parametrize("text", ["64MB", "Mi", "-1Gi", "1.5", None, 1.5, "1 Gi"])
def test_what_is_not_a_quantity_is_refused(text):
    if text == "1.5":  # a plain decimal is a quantity: 1.5 bytes, rounded up
        assert quantity_bytes(text) == 2
        return
    with pytest.raises(ValueError, match=r"quantity|negative"):
        quantity_bytes(text)


def test_memory_medium_and_its_size_are_kept_for_the_engine():
    played, changes = for_kube_play(pod([{"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}]))
    assert played["spec"]["volumes"][0]["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Mi"}
    assert changes == ()


def test_a_disk_size_limit_is_named_as_not_enforced():
    _, changes = for_kube_play(pod([{"name": "d", "emptyDir": {"sizeLimit": "1Gi"}}]))
    assert len(changes) == 1
    assert "spec.volumes[0] ('d'): emptyDir.sizeLimit 1Gi is not enforced on the local engine" in changes[0]
    assert "evicts" in changes[0]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"medium": "HugePages"}, r"emptyDir.medium 'HugePages' is not played locally"),
        ({"sizeLimit": "lots"}, r"emptyDir.sizeLimit 'lots' is not a Kubernetes quantity"),
        ({"medium": "Memory", "sizeLimit": "0"}, r"emptyDir.sizeLimit 0 leaves no room"),
    ],
)
def test_an_empty_dir_the_engine_cannot_play_is_refused(source, message):
    with pytest.raises(ManifestError, match=r"spec.volumes\[0\] \('e'\): " + message):
        for_kube_play(pod([{"name": "e", "emptyDir": source}]))


@pytest.mark.parametrize(
    ("mount", "message"),
    [
        ({"subPath": "/etc"}, r"subPath '/etc' must be a relative path that stays in the volume"),
        ({"subPath": "a/../../b"}, r"subPath 'a/../../b' must be a relative path"),
        ({"subPathExpr": "$(POD_NAME)"}, r"subPathExpr is not played locally"),
    ],
)
def test_a_sub_path_kubernetes_refuses_or_the_engine_cannot_play_is_refused(mount, message):
    doc = pod([{"name": "e", "emptyDir": {}}])
    doc["spec"]["containers"][0]["volumeMounts"][0].update(mount)
    with pytest.raises(ManifestError, match=r"spec.containers\[0\] \('a'\).volumeMounts\[0\] \('e'\): " + message):
        for_kube_play(doc)


def test_a_sub_path_into_a_claim_is_refused_and_one_into_an_empty_dir_kept():
    doc = pod([{"name": "c", "persistentVolumeClaim": {"claimName": "c"}}, {"name": "e", "emptyDir": {}}])
    doc["spec"]["containers"][0]["volumeMounts"][1]["subPath"] = "site"
    played, _ = for_kube_play(doc)
    assert played["spec"]["containers"][0]["volumeMounts"][1]["subPath"] == "site"
    doc["spec"]["containers"][0]["volumeMounts"][0]["subPath"] = "site"
    with pytest.raises(ManifestError, match=r"subPath into a persistentVolumeClaim is not played locally"):
        for_kube_play(doc)
