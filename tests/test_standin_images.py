"""Handing the stand-in images to another machine: one archive per image, and a mix-up noticed, not played.

The round trip loads into a separate Podman image store (``CONTAINERS_STORAGE_CONF``
pointing at a fresh directory), so it is a machine that has never seen the
images, and this machine's own store is left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import labkit
from labkit import lifecycle
from labkit.engines.podman import PodmanEngine
from labkit.errors import WrongImage
from labkit.manifest import load_pod, parse_pod

pytestmark = pytest.mark.podman

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "build-standin-images.sh"
UBUNTU, NGINX = "docker.io/library/ubuntu:latest", "docker.io/library/nginx:latest"


def _labels(image: str, env: dict[str, str] | None = None) -> dict[str, str]:
    out = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{json .Labels}}", image],
        capture_output=True,
        env=env,
        check=True,
    ).stdout
    return json.loads(out or b"null") or {}


@pytest.fixture
def other_machine(tmp_path):
    """The environment of a Podman whose image store is empty: a machine the images are carried to."""
    driver = subprocess.run(
        ["podman", "info", "--format", "{{.Store.GraphDriverName}}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    store = tmp_path / "store"
    conf = tmp_path / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "{driver}"\ngraphroot = "{store}/graph"\nrunroot = "{store}/run"\n')
    env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}
    yield env
    # Only this store's images go: no 'podman system reset', which would also reach the runtime state
    # that this machine's own containers share.
    subprocess.run(["podman", "rmi", "--all", "--force"], capture_output=True, env=env)
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1]
        if point.startswith(str(store)):
            subprocess.run(["umount", point], capture_output=True)
    shutil.rmtree(store, ignore_errors=True)


def test_saved_images_load_on_another_machine_each_under_its_own_name(tmp_path, other_machine):
    if _labels(UBUNTU).get("labkit.standin") != "true":
        pytest.skip("the images here are the real ones, not the kit's stand-ins")
    carried = tmp_path / "carried"
    subprocess.run([str(SCRIPT), "--save", str(carried)], capture_output=True, check=True)
    assert sorted(p.name for p in carried.iterdir()) == ["labkit-standin-nginx.tar", "labkit-standin-ubuntu.tar"]

    loaded = subprocess.run([str(SCRIPT), "--load", str(carried)], capture_output=True, text=True, env=other_machine)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert "loading docker.io/library/ubuntu:latest" in loaded.stdout and "mmdebstrap" not in loaded.stdout
    assert _labels(UBUNTU, other_machine)["labkit.standin.image"] == "ubuntu"
    assert _labels(NGINX, other_machine)["labkit.standin.image"] == "nginx"

    # The mix-up a single 'podman save' of both can leave: nginx's name on the ubuntu stand-in.
    subprocess.run(["podman", "untag", NGINX, NGINX], check=True, capture_output=True, env=other_machine)
    subprocess.run(["podman", "tag", UBUNTU, NGINX], check=True, capture_output=True, env=other_machine)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTAINERS_STORAGE_CONF", other_machine["CONTAINERS_STORAGE_CONF"])
        lab = labkit.Lab(
            ROOT / "manifests" / "multicontainer-pod.yaml", engine=PodmanEngine(state_dir=tmp_path), progress=False
        )
        with pytest.raises(WrongImage, match=r"'consumer' is the kit's stand-in for 'ubuntu', not 'nginx'.*--load DIR"):
            lab.apply()
        assert not lifecycle.exists(lab.engine, lab.pod)

    fixed = subprocess.run(
        [str(SCRIPT), "--load", str(carried), "nginx"], capture_output=True, text=True, env=other_machine
    )
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "is the stand-in for ubuntu (the images were mixed up when copied); replacing it" in fixed.stdout
    assert _labels(NGINX, other_machine)["labkit.standin.image"] == "nginx"


def test_a_stand_in_under_another_name_is_refused_before_anything_starts(seed, tmp_path):
    if _labels(UBUNTU).get("labkit.standin.image") != "ubuntu":
        pytest.skip("the ubuntu image here is not a labelled stand-in of the kit")
    subprocess.run(["podman", "tag", UBUNTU, "localhost/nginx:mixed-up"], check=True, capture_output=True)
    try:
        doc = load_pod(seed).doc
        doc["spec"]["containers"][1]["image"] = "localhost/nginx:mixed-up"
        lab = labkit.Lab(parse_pod(yaml.safe_dump(doc)), engine=PodmanEngine(state_dir=tmp_path), progress=False)
        with pytest.raises(WrongImage, match=r"stand-in for 'ubuntu', not 'nginx'"):
            lab.apply()
        assert not lifecycle.exists(lab.engine, lab.pod)
    finally:
        subprocess.run(["podman", "untag", UBUNTU, "localhost/nginx:mixed-up"], capture_output=True)
