"""Rootless Podman, as most students on Linux run it: a user the test run creates runs a lab and the contract suite.

Needs root (to create the user) and ``setfacl`` (to let that user, and only
it, through the directories between it and this checkout and its Python).
The user gets the lab's images the way the README hands them over
(``build-standin-images.sh --save`` here, ``--load`` as the user, into the
user's own image store). Everything the run made goes with the user at the end:
its processes, its containers and image store, its home, the access it was
given. Without root the tests are skipped with the reason, unless
``LABKIT_REQUIRE_ALL=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, SEED

pytestmark = pytest.mark.podman

BUILD_IMAGES = ROOT / "scripts" / "build-standin-images.sh"
TUN = Path("/dev/net/tun")
USER_PREFIX = "labkit-rl-"


def _problem() -> str | None:
    if os.geteuid() != 0:
        return "creating a user needs root"
    for tool in ("useradd", "userdel", "runuser", "setfacl", "getfacl", "pkill", "pgrep"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install acl passwd util-linux procps)"
    return None


@dataclass
class User:
    """A user made for this run, and how to run a command as it."""

    name: str
    home: Path
    runtime_dir: Path
    saved_acls: list[str] = field(default_factory=list)  # getfacl dumps of what was changed, to restore

    def env(self) -> dict[str, str]:
        return {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
        }

    def run(self, *argv: str | Path, timeout: float, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        command = ["runuser", "-u", self.name, "--", "env", "-i", *(f"{k}={v}" for k, v in self.env().items())]
        return subprocess.run(
            [*command, *map(str, argv)], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )


def _let_through(user: User, path: Path, mode: str) -> None:
    """Give ``user`` (only) ``mode`` on ``path`` where everyone else lacks it, and remember to take it back."""
    needed = {"x": stat.S_IXOTH, "rx": stat.S_IROTH | stat.S_IXOTH, "rw": stat.S_IROTH | stat.S_IWOTH}[mode]
    if path.stat().st_mode & needed == needed:
        return
    before = subprocess.run(["getfacl", "--absolute-names", str(path)], capture_output=True, text=True, check=True)
    user.saved_acls.append(before.stdout)
    subprocess.run(["setfacl", "-m", f"u:{user.name}:{mode}", str(path)], check=True)


def _paths_to_let_through() -> set[Path]:
    """Every directory between the user and this checkout and its Python."""
    return {*ROOT.parents, ROOT, *Path(sys.executable).resolve().parents}


def _end_processes(name: str) -> None:
    """Kill the user's processes (the rootless pause process, conmon, slirp4netns) and wait until they are gone."""
    subprocess.run(["pkill", "-KILL", "-u", name], check=False)
    deadline = time.monotonic() + 30
    while subprocess.run(["pgrep", "-u", name], capture_output=True).returncode == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of {name} are still running 30 s after SIGKILL")
        time.sleep(0.2)


def _sweep_stale_users() -> None:
    """Remove users an earlier, killed run left behind, with the access they were given."""
    for entry in Path("/etc/passwd").read_text().splitlines():
        name, _, uid = entry.split(":")[:3]
        if not name.startswith(USER_PREFIX):
            continue
        _end_processes(name)
        for path in (*_paths_to_let_through(), TUN):
            subprocess.run(["setfacl", "-x", f"u:{uid}", str(path)], check=False, capture_output=True)
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)
        shutil.rmtree(f"/tmp/pytest-of-{name}", ignore_errors=True)


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    problem = _problem()
    if problem is not None:
        if os.environ.get("LABKIT_REQUIRE_ALL") == "1":
            pytest.fail(f"rootless Podman must be tested here (LABKIT_REQUIRE_ALL=1) but cannot be: {problem}")
        pytest.skip(problem)
    _sweep_stale_users()
    name = f"{USER_PREFIX}{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True, capture_output=True)
    made = User(name, Path(os.path.expanduser(f"~{name}")), Path("/nonexistent"))
    # Readable by the user: not under pytest's own temporary directory, which only root may enter.
    archives = Path(tempfile.mkdtemp(prefix="labkit-images-", dir="/var/tmp"))
    try:
        made.runtime_dir = Path(tempfile.mkdtemp(prefix=f"{name}-run-"))
        shutil.chown(made.runtime_dir, name, name)
        assert re.search(rf"^{name}:\d+:\d+$", Path("/etc/subuid").read_text(), re.M), (
            "useradd gave the user no /etc/subuid range, which rootless Podman needs"
        )
        for path in _paths_to_let_through():
            _let_through(made, path, "rx" if path == ROOT else "x")  # pytest lists the checkout it runs in
        if TUN.exists():
            _let_through(made, TUN, "rw")  # slirp4netns, the rootless pod network, opens it
        archives.chmod(0o755)
        saved = subprocess.run(
            ["bash", str(BUILD_IMAGES), "--save", str(archives)], capture_output=True, text=True, timeout=600
        )
        assert saved.returncode == 0, saved.stderr[-2000:]
        for archive in archives.iterdir():
            archive.chmod(0o644)
        loaded = made.run("bash", BUILD_IMAGES, "--load", archives, timeout=600)
        said = loaded.stdout + loaded.stderr
        assert loaded.returncode == 0, said[-4000:]
        assert said.count("==> loading ") == 2 and "building instead" not in said, said[-4000:]  # handed over
        yield made
    finally:
        made.run("podman", "pod", "rm", "--all", "--force", "--time", "0", timeout=120)
        made.run("podman", "system", "reset", "--force", timeout=300)
        restored = subprocess.run(["setfacl", "--restore=-"], input="\n".join(made.saved_acls), text=True, check=False)
        _end_processes(name)
        removed = subprocess.run(["userdel", "--remove", name], check=False, capture_output=True, text=True)
        for leftover in (made.runtime_dir, archives, Path(f"/tmp/pytest-of-{name}")):
            shutil.rmtree(leftover, ignore_errors=True)
        assert restored.returncode == 0, "could not give back the directories' access control lists"
        assert f"\n{name}:" not in "\n" + Path("/etc/passwd").read_text(), f"user {name} is left: {removed.stderr}"


def test_a_lab_runs_and_passes_as_a_user_without_root(user: User) -> None:
    done = user.run(Path(sys.executable).parent / "labkit", "run", SEED, "--lines", "2", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"engine:\s+podman \S+ \(rootless", done.stdout), done.stdout[-3000:]
    assert "result:   all checks passed" in done.stdout
    left = user.run("podman", "pod", "ps", "--quiet", timeout=60)
    assert left.returncode == 0 and left.stdout.strip() == ""  # the lab removed its pod


def test_the_engine_contract_suite_passes_as_a_user_without_root(user: User) -> None:
    suite = ["tests/test_engine_contract.py", "tests/test_volume_contract.py"]
    only_podman = ["-k", "not kubernetes and not cluster"]  # the stand-in is tested rootful; here Podman itself
    done = user.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *only_podman, *suite, timeout=1800)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 25, summary
    assert "skipped" not in summary, summary  # every contract test ran, none skipped for a missing image


def test_the_notebooks_run_as_a_user_without_root(user: User) -> None:
    """Run All, as a student without root: every cell runs, every check cell holds, and differences are named.

    Outputs are not compared with the committed ones: where the engine
    differs, so do some (the engine line; the memory table of notebook 04,
    which names the difference where containers have no cgroup of their own).
    """
    notebooks = sorted((ROOT / "notebooks").glob("0[1-6]-*.ipynb"))
    executed = user.home / "executed"
    jupyter = Path(sys.executable).parent / "jupyter"
    argv = ["nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=600", "--output-dir"]
    done = user.run(jupyter, *argv, executed, *notebooks, timeout=1800)
    assert done.returncode == 0, done.stderr[-5000:]  # nbconvert stops at a cell that raised
    for nb in notebooks:
        cells = [c for c in json.loads((executed / nb.name).read_text())["cells"] if c["cell_type"] == "code"]
        assert all(c["execution_count"] for c in cells), nb.name
        assert not [o for c in cells for o in c["outputs"] if o["output_type"] == "error"], nb.name

    own_cgroups = user.run(
        sys.executable, "-c", "from labkit.engines.podman import PodmanEngine; print(PodmanEngine().container_cgroups)",
        timeout=120,
    )  # fmt: skip
    assert own_cgroups.stdout.strip() in ("True", "False"), own_cgroups.stderr
    memory = {
        "".join(c["source"]).split("\n", 1)[0]: "".join("".join(o.get("text", "")) for o in c["outputs"])
        for c in json.loads((executed / "04-shared-volume-experiments.ipynb").read_text())["cells"]
        if c["cell_type"] == "code"
    }
    if own_cgroups.stdout.strip() == "True":
        assert "| freed with the file: True" in memory["if charged is None:"], memory["if charged is None:"]
    else:
        assert "no memory cgroup of their own" in memory["try:"], memory["try:"]
        assert memory["if charged is None:"].startswith("not checked: "), memory["if charged is None:"]
    left = user.run("podman", "pod", "ps", "--quiet", timeout=60)
    assert left.returncode == 0 and left.stdout.strip() == ""
