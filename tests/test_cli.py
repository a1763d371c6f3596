from __future__ import annotations

import re
import subprocess
import sys

import pytest

from labkit.cli import main


def _gone(name: str) -> bool:
    return subprocess.run(["podman", "pod", "exists", name]).returncode == 1


def test_missing_manifest_exits_2_with_a_message(capsys, tmp_path):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "-3"], "must be greater than zero"),
        (["--lines", "0"], "must be at least 1"),
        (["--via", "carrier-pigeon"], "invalid choice"),
    ],
)
def test_arguments_are_checked_before_anything_runs(capsys, seed, args, message):
    with pytest.raises(SystemExit) as info:
        main(["run", str(seed), *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.podman
def test_run_prints_a_passing_report(capsys, request, tmp_path):
    hires = request.config.rootpath / "manifests" / "multicontainer-pod-hires.yaml"  # a line every second
    csv = tmp_path / "lines.csv"
    assert main(["run", str(hires), "--lines", "2", "--poll", "0.05", "--name", "cli-run", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "result:   all checks passed" in out
    assert "PASSED    all lines served" in out
    assert csv.read_text().startswith("line_no,hostname,written_at,served_at,observed,latency")
    assert _gone("cli-run")


@pytest.mark.podman
def test_run_exits_1_when_a_check_is_not_passed(capsys, seed, tmp_path):
    # The seed writing every second instead of every ten, with the same whole-second stamps.
    quick = tmp_path / "seed-every-second.yaml"
    quick.write_text(seed.read_text().replace("sleep 10", "sleep 1"))
    # A bound finer than whole-second timestamps can resolve: the check cannot pass, and must not claim to.
    assert main(["run", str(quick), "--lines", "1", "--name", "cli-fail", "--max-latency", "0.000001"]) == 1
    out = capsys.readouterr().out
    assert "UNDECIDED latency <= 1e-06 s" in out
    # the seed's whole-second stamps: one line observed, and the report says what it cannot resolve
    assert "written, 1 written while observed" in out and "latency:  one line observed:" in out
    assert "timestamps have 1 s resolution, so latencies below a second cannot be resolved" in out
    assert "result:   some checks did not pass" in out


@pytest.mark.podman
def test_run_reports_a_crashing_pod_and_cleans_up(capsys, test_manifest):
    assert main(["run", str(test_manifest("crashing-pod.yaml")), "--duration", "5"]) == 2
    err = capsys.readouterr().err
    assert "container 'producer'" in err and "exit code 3" in err
    assert _gone("crashing-lab")


@pytest.mark.podman
def test_run_via_the_in_pod_probe(capsys, request):
    hires = request.config.rootpath / "manifests" / "multicontainer-pod-hires.yaml"
    assert main(["run", str(hires), "--lines", "2", "--poll", "0.05", "--name", "cli-probe", "--via", "in-pod"]) == 0
    out = capsys.readouterr().out
    assert "via in-pod" in out
    joined = re.sub(r"\n {3,}", " ", out)  # the report's folded lines joined again
    assert (
        "clock:    offset exactly 0 s: the in-pod probe and the producer both read the clock of pod cli-probe" in joined
    )
    assert "result:   all checks passed" in out
    assert _gone("cli-probe")


@pytest.mark.podman
def test_run_via_the_in_pod_probe_without_curl_exits_2(capsys, test_manifest):
    assert main(["run", str(test_manifest("curl-less-server-pod.yaml")), "--duration", "2", "--via", "in-pod"]) == 2
    assert "has no curl" in capsys.readouterr().err
    assert _gone("curl-less-lab")


_WITHOUT_CLIENT = """
import sys
sys.modules["kubernetes"] = None  # as if the client were not installed: importing it fails
sys.modules["urllib3"] = None
from labkit.cli import main
print("run exit", main(["run", "/nonexistent/pod.yaml"]))
print("client imported:", any(m.startswith("kubernetes.") for m in sys.modules))
code = main(["class", "status"])
print("class status exit", code)
"""


def test_the_cli_needs_no_cluster_client_until_labkit_class_runs():
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_CLIENT], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "run exit 2" in done.stdout  # 'labkit run' parsed its arguments and read the manifest path
    assert "client imported: False" in done.stdout
    assert "class status exit 2" in done.stdout
    assert "pip install 'labkit[kubernetes]'" in done.stderr
