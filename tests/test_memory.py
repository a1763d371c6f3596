"""Reading a container's memory charge from what its cgroup files print."""

from __future__ import annotations

import subprocess

import pytest

from labkit.errors import EngineError
from labkit.memory import READ_CGROUP, MemoryUse, parse_cgroup_memory


def test_the_charge_and_its_tmpfs_part_are_read():
    assert parse_cgroup_memory("9437184\nshmem 8388608\n", "producer") == MemoryUse(9437184, 8388608)


@pytest.mark.parametrize("printed", ["", "9437184\n", "9437184\nfile 12\n", "max\nshmem 1\n", "1\nshmem 2\nshmem 3\n"])
def test_a_container_without_a_readable_cgroup_is_named(printed):
    with pytest.raises(EngineError, match=r"container 'consumer' shows no memory cgroup.*kubectl top pod"):
        parse_cgroup_memory(printed, "consumer")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"memory.current": "4096\n", "memory.stat": "anon 1\nshmem 2048\nshmem_thp 0\n"}, MemoryUse(4096, 2048)),
        (
            {"memory/memory.usage_in_bytes": "8192\n", "memory/memory.stat": "cache 5\nshmem 1024\ntotal_shmem 9\n"},
            MemoryUse(8192, 1024),
        ),
    ],
    ids=["cgroup-v2", "cgroup-v1"],
)
def test_the_script_reads_either_cgroup_version(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    script = READ_CGROUP.replace("/sys/fs/cgroup", str(tmp_path))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert parse_cgroup_memory(out, "producer") == expected


def test_an_engine_whose_containers_share_a_cgroup_is_refused_not_misread(seed):
    import labkit
    from labkit.engines.fake import FakeEngine

    engine = FakeEngine()
    engine.container_cgroups = False  # as rootless Podman on cgroup v1 reports itself
    with labkit.Lab(seed, engine=engine, progress=False) as lab:
        lab.apply().wait_ready(timeout=10)
        with pytest.raises(EngineError, match=r"no memory cgroup of their own .*rootless Podman.*cgroup v2"):
            lab.memory()


@pytest.mark.parametrize(
    ("host", "own"),
    [
        ({"cgroupVersion": "v1", "cgroupManager": "cgroupfs", "cgroupControllers": ["memory"]}, False),
        ({"cgroupVersion": "v2", "cgroupManager": "cgroupfs", "cgroupControllers": ["memory"]}, False),
        ({"cgroupVersion": "v2", "cgroupManager": "systemd", "cgroupControllers": ["cpu", "pids"]}, False),
        ({"cgroupVersion": "v2", "cgroupManager": "systemd", "cgroupControllers": ["cpu", "memory", "pids"]}, True),
        ({}, False),
    ],
)
def test_rootless_podman_has_container_cgroups_only_through_systemd_with_memory_delegated(host, own):
    from labkit.engines.podman import _delegated_memory_cgroups

    assert _delegated_memory_cgroups(host) is own


@pytest.mark.podman
def test_rootful_podman_gives_each_container_its_own_cgroup():
    from labkit.engines.podman import PodmanEngine

    engine = PodmanEngine()
    if engine.rootless:
        pytest.skip("Podman runs rootless here; tests/test_rootless.py covers that side")
    assert engine.container_cgroups
