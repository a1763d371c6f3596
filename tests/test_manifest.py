from __future__ import annotations

import pytest

from labkit.errors import ContainerNotFound, ManifestError
from labkit.manifest import load_pod, parse_pod

POD = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - {name: a, image: ubuntu}
  - {name: b, image: nginx, ports: [{containerPort: 80}]}
"""


def test_seed_manifest_reads_as_the_tutorial_describes(seed):
    pod = load_pod(seed)
    assert pod.name == "multicontainer-pod"
    assert pod.container_names == ["producer", "consumer"]
    assert pod.container("consumer").ports == (80,)
    assert pod.volumes["webcontent"]["emptyDir"] == {}
    assert pod.container("producer").mounts == (("webcontent", "/var/log"),)


def test_default_container_is_first_without_annotation():
    pod = parse_pod(POD)
    assert pod.default_container == "a"
    assert pod.container().name == "a"


def test_default_container_follows_kubectl_annotation(test_manifest):
    pod = load_pod(test_manifest("variant-pod.yaml"))
    assert pod.default_container == "web"
    assert pod.container(None).name == "web"


def test_unknown_container_lists_the_pods_containers():
    with pytest.raises(ContainerNotFound, match=r"no container 'c'.*a, b"):
        parse_pod(POD).container("c")


def test_renamed_pod_keeps_everything_else():
    pod = parse_pod(POD)
    other = pod.renamed("p2")
    assert other.name == "p2" and other.doc["metadata"]["name"] == "p2"
    assert pod.doc["metadata"]["name"] == "p"  # the original is untouched
    with pytest.raises(ManifestError, match="not a valid Kubernetes name"):
        pod.renamed("Bad_Name")


def test_missing_file(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        load_pod(tmp_path / "nope.yaml")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ManifestError, match="is a directory"):
        load_pod(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Pod\n  bad: [indent", "not valid YAML"),
        ("", "is empty"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "holds no Pod .found 'Service'"),
        ("- just\n- a list\n", "holds no Pod"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n", "has no containers"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", "has no spec"),
        ("apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, image: x}]}\n", "no metadata.name"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a}]}\n", "has no image"),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            "  - {name: a, image: x, volumeMounts: [{name: v, mountPath: /x}]}\n",
            "which spec.volumes does not define",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            "  - {name: a, image: x}\n  - {name: a, image: y}\n",
            "two containers are called 'a'",
        ),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: P_1}\nspec: {containers: [{name: a, image: x}]}\n", "not a valid"),
    ],
)
def test_bad_manifests_say_what_to_fix(text, message):
    with pytest.raises(ManifestError, match=message):
        parse_pod(text)


def test_multi_document_file_with_one_pod():
    text = "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n" + POD
    assert parse_pod(text).name == "p"
