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
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: P_1}\nspec: {containers: [{name: a, image: x}]}\n",
            "not a valid",
        ),
    ],
)
def test_bad_manifests_say_what_to_fix(text, message):
    with pytest.raises(ManifestError, match=message):
        parse_pod(text)


def test_multi_document_file_with_one_pod():
    text = "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n" + POD
    assert parse_pod(text).name == "p"


SAVED = """
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: default
  uid: 6f1c2a3e-9d4b-4c1a-8e2f-0b7d5a9c3e41
  resourceVersion: "48213"
  creationTimestamp: "2026-11-30T09:12:31Z"
  generation: 1
  selfLink: /api/v1/namespaces/default/pods/p
  deletionTimestamp: "2026-11-30T10:00:00Z"
  deletionGracePeriodSeconds: 30
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: rs, uid: 1234}]
  managedFields: [{manager: kubectl, operation: Update}]
  labels: {app: lab}
  annotations: {kubectl.kubernetes.io/default-container: b}
spec:
  nodeName: kind-control-plane
  priority: 0
  preemptionPolicy: PreemptLowerPriority
  dnsPolicy: ClusterFirst
  tolerations: [{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute}]
  containers:
  - {name: a, image: ubuntu, imagePullPolicy: Always}
  - {name: b, image: nginx}
status: {phase: Running, podIP: 10.244.0.7}
"""


def test_fields_a_cluster_wrote_are_left_out_and_listed():
    pod = parse_pod(SAVED)
    meta, spec = pod.doc["metadata"], pod.doc["spec"]
    assert set(meta) == {"name", "namespace", "labels", "annotations"}
    assert "status" not in pod.doc
    assert not {"nodeName", "priority", "preemptionPolicy"} & set(spec)
    # what a user may mean stays
    assert spec["dnsPolicy"] == "ClusterFirst" and spec["tolerations"]
    assert spec["containers"][0]["imagePullPolicy"] == "Always"
    assert pod.default_container == "b"
    assert "metadata.resourceVersion (set by the server)" in pod.ignored
    assert "status (reported by the cluster)" in pod.ignored
    listed = {item.split(" ")[0] for item in pod.ignored}
    assert listed == {
        "metadata.uid",
        "metadata.resourceVersion",
        "metadata.creationTimestamp",
        "metadata.generation",
        "metadata.selfLink",
        "metadata.deletionTimestamp",
        "metadata.deletionGracePeriodSeconds",
        "metadata.ownerReferences",
        "metadata.managedFields",
        "status",
        "spec.nodeName",
        "spec.priority",
        "spec.preemptionPolicy",
    }
    assert any("owner" in item for item in pod.ignored if item.startswith("metadata.ownerReferences"))


def test_a_manifest_written_by_hand_ignores_nothing():
    assert parse_pod(POD).ignored == ()


def test_what_was_left_out_survives_the_kits_copies():
    pod = parse_pod(SAVED)
    assert pod.renamed("q").ignored == pod.ignored
    assert pod.with_labels({"x": "y"}).ignored == pod.ignored
    assert pod.with_env({"a": {"X": 1}}).ignored == pod.ignored


def test_stripping_returns_a_copy_and_checks_its_argument():
    import yaml

    from labkit.manifest import strip_server_fields

    doc = yaml.safe_load(SAVED)
    before = yaml.safe_dump(doc)
    stripped, ignored = strip_server_fields(doc)
    assert yaml.safe_dump(doc) == before
    assert "uid" not in stripped["metadata"] and ignored
    with pytest.raises(TypeError):
        strip_server_fields("apiVersion: v1")  # type: ignore[arg-type]


def test_saved_seed_manifest_loads_as_the_seed(test_manifest, seed):
    saved = load_pod(test_manifest("saved-seed-pod.yaml"))
    assert saved.container_names == load_pod(seed).container_names
    assert saved.container("consumer").ports == (80,)
    assert "spec.nodeName (chosen by the scheduler; it would pin the pod to a node of the cluster it came from)" in (
        saved.ignored
    )


def test_a_volume_variant_replaces_the_source_and_leaves_the_original(seed):
    pod = load_pod(seed)
    memory = pod.with_volume("webcontent", emptyDir={"medium": "Memory", "sizeLimit": "64Mi"})
    assert memory.doc["spec"]["volumes"] == [
        {"name": "webcontent", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}
    ]
    assert pod.doc["spec"]["volumes"] == [{"name": "webcontent", "emptyDir": {}}]
    with pytest.raises(ManifestError, match=r"no volume 'web' \(its volumes: 'webcontent'\)"):
        pod.with_volume("web", emptyDir={})
    with pytest.raises(TypeError, match="exactly one source"):
        pod.with_volume("webcontent", emptyDir={}, hostPath={"path": "/tmp"})


def test_a_mount_variant_sets_and_removes_fields(seed):
    pod = load_pod(seed).with_mount("consumer", "webcontent", readOnly=True, subPath="site")
    consumer = pod.doc["spec"]["containers"][1]["volumeMounts"][0]
    assert consumer == {"name": "webcontent", "mountPath": "/usr/share/nginx/html", "readOnly": True, "subPath": "site"}
    again = pod.with_mount("consumer", "webcontent", subPath=None)
    assert "subPath" not in again.doc["spec"]["containers"][1]["volumeMounts"][0]
    with pytest.raises(ContainerNotFound, match="producer, consumer"):
        pod.with_mount("sidecar", "webcontent", readOnly=True)
    with pytest.raises(ManifestError, match="no volume 'logs'"):
        pod.with_mount("consumer", "logs", readOnly=True)


def test_an_args_variant_keeps_the_command(seed):
    pod = load_pod(seed).with_args("producer", ["-c", "echo once >> /var/log/index.html; sleep infinity"])
    producer = pod.container("producer")
    assert producer.command == ("/bin/bash",)
    assert producer.args == ("-c", "echo once >> /var/log/index.html; sleep infinity")
    with pytest.raises(TypeError, match="list of strings"):
        load_pod(seed).with_args("producer", "echo once")
