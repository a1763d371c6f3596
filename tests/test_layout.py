from __future__ import annotations

from pathlib import Path

import pytest

from labkit.errors import ContainerNotFound, ManifestError
from labkit.layout import derive_layout
from labkit.manifest import load_pod, parse_pod

EXPERIMENTS = Path(__file__).resolve().parent.parent / "manifests" / "experiments"


def test_seed_roles(seed):
    lay = derive_layout(load_pod(seed))
    assert (lay.producer, lay.server, lay.volume) == ("producer", "consumer", "webcontent")
    assert lay.producer_path == "/var/log/index.html"
    assert lay.server_path == "/usr/share/nginx/html/index.html"
    assert lay.url_path == "/index.html"
    assert lay.port == 80
    assert lay.interval == 10.0


def test_variant_roles_derived_without_options(test_manifest):
    lay = derive_layout(load_pod(test_manifest("variant-pod.yaml")))
    assert (lay.producer, lay.server, lay.volume) == ("writer", "web", "shared")
    assert lay.producer_path == "/data/feed/log.txt"
    assert lay.url_path == "/log.txt"
    assert lay.interval == 2.0


def _pod(containers: str) -> str:
    return (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec:\n  volumes: [{name: v, emptyDir: {}}, {name: w, emptyDir: {}}]\n"
        "  containers:\n" + containers
    )


TWO_SERVERS = _pod(
    "  - {name: a, image: x, ports: [{containerPort: 80}], volumeMounts: [{name: v, mountPath: /a}]}\n"
    "  - {name: b, image: x, ports: [{containerPort: 81}], volumeMounts: [{name: v, mountPath: /b}]}\n"
)
TWO_WRITERS = _pod(
    "  - {name: s, image: x, ports: [{containerPort: 80}], volumeMounts: [{name: v, mountPath: /s}]}\n"
    "  - {name: a, image: x, volumeMounts: [{name: v, mountPath: /a}]}\n"
    "  - {name: b, image: x, volumeMounts: [{name: v, mountPath: /b}]}\n"
)


def test_ambiguous_server_asks_for_server_option():
    pod = parse_pod(TWO_SERVERS)
    with pytest.raises(ManifestError, match="pass server="):
        derive_layout(pod)
    lay = derive_layout(pod, server="b", producer="a")
    assert (lay.server, lay.port, lay.producer) == ("b", 81, "a")


def test_ambiguous_producer_asks_for_producer_option():
    pod = parse_pod(TWO_WRITERS)
    with pytest.raises(ManifestError, match="pass producer="):
        derive_layout(pod)
    lay = derive_layout(pod, producer="b", file="out.log", interval=0.5)
    assert (lay.producer, lay.producer_path, lay.url_path, lay.interval) == ("b", "/b/out.log", "/out.log", 0.5)


def test_no_port_and_no_shared_volume_are_explained():
    no_port = _pod("  - {name: a, image: x, volumeMounts: [{name: v, mountPath: /a}]}\n")
    with pytest.raises(ManifestError, match="declares a containerPort"):
        derive_layout(parse_pod(no_port))
    unshared = _pod(
        "  - {name: s, image: x, ports: [{containerPort: 80}], volumeMounts: [{name: v, mountPath: /s}]}\n"
        "  - {name: a, image: x, volumeMounts: [{name: w, mountPath: /a}]}\n"
    )
    with pytest.raises(ManifestError, match="no container shares a volume"):
        derive_layout(parse_pod(unshared))


def test_bad_options(seed):
    pod = load_pod(seed)
    with pytest.raises(ManifestError, match="no containerPort 81"):
        derive_layout(pod, port=81)
    with pytest.raises(ManifestError, match="inside the shared volume"):
        derive_layout(pod, file="../etc/passwd")
    with pytest.raises(ManifestError, match="positive"):
        derive_layout(pod, interval=0)
    with pytest.raises(ContainerNotFound, match="producer, consumer"):
        derive_layout(pod, producer="nobody")


def test_hires_interval_comes_from_the_environment():
    pod = load_pod(Path(__file__).resolve().parent.parent / "manifests" / "multicontainer-pod-hires.yaml")
    assert derive_layout(pod).interval == 1.0
    faster = pod.with_env({"producer": {"INTERVAL": 0.05}})
    assert derive_layout(faster).interval == 0.05
    assert dict(faster.container("producer").env) == {"INTERVAL": "0.05"}
    assert dict(pod.container("producer").env) == {"INTERVAL": "1"}  # the original is untouched


def test_bad_env_overrides():
    pod = load_pod(Path(__file__).resolve().parent.parent / "manifests" / "multicontainer-pod-hires.yaml")
    with pytest.raises(ContainerNotFound, match="producer, consumer"):
        pod.with_env({"writer": {"INTERVAL": "1"}})
    with pytest.raises(ManifestError, match="not a valid environment variable name"):
        pod.with_env({"producer": {"1X": "1"}})


def test_a_server_that_mounts_a_sub_path_serves_the_file_from_its_root(seed):
    loop = "while true; do echo $(hostname) $(date) >> /var/log/site/index.html; sleep 10; done"
    pod = load_pod(seed).with_mount("consumer", "webcontent", subPath="site").with_args("producer", ["-c", loop])
    layout = derive_layout(pod)
    assert (layout.producer_path, layout.server_path, layout.url_path) == (
        "/var/log/site/index.html",
        "/usr/share/nginx/html/index.html",
        "/index.html",
    )


def test_a_producer_that_mounts_a_sub_path_writes_into_that_part_of_the_volume(seed):
    pod = load_pod(seed).with_mount("producer", "webcontent", subPath="logs")
    layout = derive_layout(pod)
    assert (layout.producer_path, layout.server_path, layout.url_path) == (
        "/var/log/index.html",
        "/usr/share/nginx/html/logs/index.html",
        "/logs/index.html",
    )


def test_a_server_that_mounts_the_file_itself_serves_it_from_the_mount(seed):
    pod = load_pod(EXPERIMENTS / "file-sub-path.yaml")
    layout = derive_layout(pod)
    assert (layout.producer_path, layout.server_path, layout.url_path) == (
        "/var/log/index.html",
        "/usr/share/nginx/html/index.html",
        "/index.html",
    )
    renamed = pod.with_mount("consumer", "webcontent", mountPath="/usr/share/nginx/html/page.txt")
    assert (derive_layout(renamed).server_path, derive_layout(renamed).url_path) == (
        "/usr/share/nginx/html/page.txt",
        "/page.txt",
    )


def test_a_server_whose_sub_path_misses_the_file_is_refused(seed):
    pod = load_pod(seed).with_mount("consumer", "webcontent", subPath="site")
    with pytest.raises(ManifestError, match=r"'consumer' mounts only 'site' of volume 'webcontent' \(subPath\)"):
        derive_layout(pod)


def test_the_file_written_to_is_chosen_over_files_only_mentioned(seed):
    loop = "while true; do [ -e /var/log/stop ] && exit 3; echo $(date) >> /var/log/feed.txt; sleep 1; done"
    layout = derive_layout(load_pod(seed).with_args("producer", ["-c", loop]))
    assert layout.producer_path == "/var/log/feed.txt"
