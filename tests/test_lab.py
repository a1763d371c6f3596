from __future__ import annotations

import pytest

import labkit
from labkit.errors import EngineUnavailable, ManifestError
from labkit.lab import _argv


def test_argv_from_list_and_string():
    assert _argv(["ls", "-la", "/var/log"], shell=False) == ["ls", "-la", "/var/log"]
    assert _argv("tail -n 2 '/var/log/index.html'", shell=False) == ["tail", "-n", "2", "/var/log/index.html"]
    assert _argv("ls | wc -l", shell=True) == ["/bin/sh", "-c", "ls | wc -l"]


def test_bad_commands():
    with pytest.raises(ValueError, match="empty"):
        _argv([], shell=False)
    with pytest.raises(TypeError, match="one string"):
        _argv(["ls", "-l"], shell=True)
    with pytest.raises(ValueError, match="cannot split"):
        _argv("echo 'unclosed", shell=False)


def test_unknown_engine_lists_the_known_ones(seed):
    with pytest.raises(EngineUnavailable, match=r"no engine called 'nope'.*podman"):
        labkit.Lab(seed, engine="nope")


def test_engine_from_environment(seed, monkeypatch):
    monkeypatch.setenv("LABKIT_ENGINE", "elsewhere")
    with pytest.raises(EngineUnavailable, match="'elsewhere'"):
        labkit.Lab(seed)


def test_bad_manifest_fails_before_any_engine_work(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        labkit.Lab(tmp_path / "missing.yaml", engine="nope")


def test_public_surface_is_what_all_says():
    public = {n for n in dir(labkit) if not n.startswith("_")} - {"annotations"}
    modules = {
        "checks",
        "class_cluster",
        "classroom",
        "cli",
        "clocks",
        "display",
        "ownership",
        "engines",
        "errors",
        "forward",
        "lab",
        "latency",
        "lifecycle",
        "layout",
        "lines",
        "manifest",
        "memory",
        "observation",
        "poller",
        "probe",
        "progress",
        "report",
        "settings",
        "sweeps",
        "tls",
        "verify",
        "views",
    }
    assert public - modules == set(labkit.__all__)


@pytest.mark.podman
def test_variant_manifest_runs_unchanged(test_manifest):
    with labkit.Lab(test_manifest("variant-pod.yaml"), progress=False) as lab:
        lab.apply().wait_ready()
        assert lab.exec(["test", "-d", "/usr/share/nginx"]).returncode == 0  # default container: web
        report = lab.measure(lines=1, timeout=30)
        assert report.passed, str(report)
        assert set(report.lines["hostname"]) == {"variant-lab"}
