"""What the Podman engine adds to ``podman kube play`` to behave like Kubernetes,
checked on the engine's own terms (the shared behaviour is in the contract suite)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

import labkit
from labkit import lifecycle
from labkit.engines.podman import PodmanEngine
from labkit.errors import ContainerCrashed, EngineUnavailable, PodExists
from labkit.manifest import load_pod, parse_pod

pytestmark = pytest.mark.podman


def _listeners() -> dict[int, str]:
    """Listening TCP ports and the address each is bound to, from /proc."""
    out = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[3] == "0A":
            addr, port = cols[1].split(":")
            out[int(port, 16)] = addr
    return out


def test_ports_are_published_on_loopback_only(seed):
    with labkit.Lab(seed, engine="podman", name="podman-ports", progress=False) as lab:
        lab.apply().wait_ready()
        info = json.loads(subprocess.run(["podman", "pod", "inspect", lab.name], capture_output=True).stdout)
        info = info[0] if isinstance(info, list) else info
        bindings = info["InfraConfig"]["PortBindings"]
        assert list(bindings) == ["80/tcp"]
        host_ips = {b["HostIp"] for b in bindings["80/tcp"]}
        assert host_ips == {"127.0.0.1"}
        host_port = int(bindings["80/tcp"][0]["HostPort"])
        assert host_port != 80
        # Podman 4.3 alone would publish 0.0.0.0:80; the kit's port is bound to loopback, if at all.
        assert _listeners().get(host_port) in (None, "0100007F")


def test_emptydir_becomes_a_kit_owned_directory_removed_with_the_pod(seed, tmp_path):
    engine = PodmanEngine(state_dir=tmp_path)
    with labkit.Lab(seed, engine=engine, name="podman-volume", progress=False) as lab:
        lab.apply().wait_ready()
        volume = tmp_path / "podman" / "podman-volume" / "volumes" / "webcontent"
        assert [p.name for p in volume.iterdir()] == ["index.html"]
        assert volume.stat().st_mode & 0o777 == 0o777
    assert not (tmp_path / "podman" / "podman-volume").exists()


def test_a_pod_the_kit_did_not_create_is_never_replaced(seed):
    subprocess.run(["podman", "pod", "create", "--name", "someone-elses"], check=True, capture_output=True)
    try:
        lab = labkit.Lab(seed, engine="podman", name="someone-elses", progress=False)
        with pytest.raises(PodExists, match=r"not created by labkit.*podman pod rm -f someone-elses"):
            lab.apply()
        assert subprocess.run(["podman", "pod", "exists", "someone-elses"]).returncode == 0
    finally:
        subprocess.run(["podman", "pod", "rm", "-f", "someone-elses"], capture_output=True)


def test_a_leftover_of_the_kit_is_replaced(seed):
    first = labkit.Lab(seed, engine="podman", name="podman-leftover", progress=False)
    first.apply().wait_ready()
    # A second lab of the same name, as after a crashed kernel, takes over.
    with labkit.Lab(seed, engine="podman", name="podman-leftover", progress=False) as second:
        second.apply().wait_ready()
        assert second.exec("hostname").stdout.strip() == "podman-leftover"
    assert not lifecycle.exists(second.engine, second.pod)


def test_missing_podman_says_how_to_install():
    with pytest.raises(EngineUnavailable, match=r"apt-get install podman.*Kubernetes"):
        PodmanEngine(podman="/nonexistent/podman")


def test_unusable_podman_says_what_to_run():
    with pytest.raises(EngineUnavailable, match=r"not usable.*prepare-podman\.sh"):
        PodmanEngine(podman="false")


def test_describe_names_version_and_mode():
    text = PodmanEngine().describe()
    assert text.startswith("podman ") and ("rootful" in text or "rootless" in text)


def test_a_failing_init_container_stops_the_apply_and_leaves_nothing(seed, tmp_path):
    doc = load_pod(seed).doc
    doc["spec"]["initContainers"] = [
        {"name": "seed-page", "image": "ubuntu", "command": ["/bin/bash", "-c", "echo no page today >&2; exit 4"]}
    ]
    engine = PodmanEngine(state_dir=tmp_path)
    lab = labkit.Lab(parse_pod(yaml.safe_dump(doc)), engine=engine, name="podman-init-fails", progress=False)
    with pytest.raises(ContainerCrashed, match=r"init container 'seed-page' .* exited with code 4 \(no page today\)"):
        lab.apply()
    assert not lifecycle.exists(engine, lab.pod)
    assert subprocess.run(["podman", "container", "exists", "podman-init-fails-seed-page"]).returncode == 1
    assert not (tmp_path / "podman" / "podman-init-fails").exists()
