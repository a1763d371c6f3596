"""Rootless Podman, as most students on Linux run it: a user the test run creates runs a lab and the contract suite.

Needs root (to create the user) and ``setfacl`` (to let that user, and only
it, through the directories between it and this checkout and its Python).
The user gets the lab's images the way the README hands them over
(``build-standin-images.sh --save`` here, ``--load`` as the user, into the
user's own image store). Everything the run made goes with the user at the end:
its processes, its containers and image store, its home, the access it was
given. Without root the tests are skipped with the reason, unless
``LABKIT_REQUIRE_ROOTLESS=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, SEED

pytestmark = pytest.mark.podman

BUILD_IMAGES = ROOT / "scripts" / "build-standin-images.sh"
TUN = Path("/dev/net/tun")


def _problem() -> str | None:
    if os.geteuid() != 0:
        return "creating a user needs root"
    for tool in ("useradd", "userdel", "runuser", "setfacl", "pkill"):
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
    needed = {"x": stat.S_IXOTH, "rw": stat.S_IROTH | stat.S_IWOTH}[mode]
    if path.stat().st_mode & needed == needed:
        return
    before = subprocess.run(["getfacl", "--absolute-names", str(path)], capture_output=True, text=True, check=True)
    user.saved_acls.append(before.stdout)
    subprocess.run(["setfacl", "-m", f"u:{user.name}:{mode}", str(path)], check=True)


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[User]:
    problem = _problem()
    if problem is not None:
        if os.environ.get("LABKIT_REQUIRE_ROOTLESS") == "1":
            pytest.fail(f"rootless Podman is required here (LABKIT_REQUIRE_ROOTLESS=1) but cannot be tested: {problem}")
        pytest.skip(problem)
    name = f"labkit-rl-{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True, capture_output=True)
    home = Path(os.path.expanduser(f"~{name}"))
    runtime_dir = Path(tempfile.mkdtemp(prefix=f"{name}-run-"))
    shutil.chown(runtime_dir, name, name)
    made = User(name, home, runtime_dir)
    try:
        assert re.search(rf"^{name}:\d+:\d+$", Path("/etc/subuid").read_text(), re.M), (
            "useradd gave the user no /etc/subuid range, which rootless Podman needs"
        )
        python = Path(sys.executable).resolve()
        for path in {*ROOT.parents, ROOT, *python.parents}:
            _let_through(made, path, "x")
        if TUN.exists():
            _let_through(made, TUN, "rw")  # slirp4netns, the rootless pod network, opens it
        archives = tmp_path_factory.mktemp("images")
        archives.chmod(0o755)
        saved = subprocess.run(
            ["bash", str(BUILD_IMAGES), "--save", str(archives)], capture_output=True, text=True, timeout=600
        )
        assert saved.returncode == 0, saved.stderr[-2000:]
        for archive in archives.iterdir():
            archive.chmod(0o644)
        loaded = made.run("bash", BUILD_IMAGES, "--load", archives, timeout=600)
        assert loaded.returncode == 0, loaded.stdout[-2000:] + loaded.stderr[-2000:]
        yield made
    finally:
        made.run("podman", "pod", "rm", "--all", "--force", "--time", "0", timeout=120)
        made.run("podman", "system", "reset", "--force", timeout=300)
        restored = subprocess.run(["setfacl", "--restore=-"], input="\n".join(made.saved_acls), text=True, check=False)
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)  # the rootless pause process, conmon
        removed = subprocess.run(["userdel", "--remove", name], check=False, capture_output=True, text=True)
        shutil.rmtree(runtime_dir, ignore_errors=True)
        assert restored.returncode == 0, "could not give back the directories' access control lists"
        assert name not in Path("/etc/passwd").read_text(), f"user {name} is left: {removed.stderr}"


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
