"""``labkit class`` end to end against the API stand-in: create, a student's lab, status, delete, and bad input."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
import yaml

import labkit
from labkit import classroom
from labkit.class_cluster import ClassAdmin
from labkit.cli import main
from labkit.engines.kubernetes import KubernetesEngine
from labkit.errors import AuthenticationError, ClassError, EngineError
from labkit.progress import PROGRESS_CONFIGMAP
from labkit.progress import from_record as progress_of

pytestmark = pytest.mark.podman


@pytest.fixture
def api(tmp_path):
    from tests.k8s_standin import KubernetesStandIn

    with KubernetesStandIn(namespaces=("default",), tmp_dir=tmp_path / "api") as server:
        yield server


def _namespaces(admin: ClassAdmin) -> dict[str, dict[str, str]]:
    return {ns.metadata.name: ns.metadata.labels or {} for ns in admin.core.list_namespace().items}


def test_create_twice_changes_nothing_and_each_student_works_in_their_own_namespace(api, tmp_path, seed, capsys):
    out = tmp_path / "kubeconfigs"
    assert main(["class", "create", "2", "--out", str(out), "--kubeconfig", api.kubeconfig]) == 0
    first = capsys.readouterr().out
    assert (
        "student-01: namespace lab-student-01" in first
        and "Namespace, ServiceAccount, Role, RoleBinding, token" in first
    )
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["student-01.kubeconfig", "student-02.kubeconfig"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    written = {f.name: f.read_bytes() for f in files}

    assert main(["class", "create", "2", "--out", str(out), "--kubeconfig", api.kubeconfig]) == 0
    assert capsys.readouterr().out.count("unchanged") == 2
    assert {f.name: f.read_bytes() for f in out.iterdir()} == written  # same tokens, same files

    # A kubeconfig left readable by others is replaced by one only its owner may read.
    (out / "student-02.kubeconfig").chmod(0o644)
    assert main(["class", "create", "2", "--out", str(out), "--kubeconfig", api.kubeconfig, "--renew"]) == 0
    assert capsys.readouterr().out.count("; token)") == 2  # a new token for each, nothing else changed
    assert stat.S_IMODE((out / "student-02.kubeconfig").stat().st_mode) == 0o600
    assert (out / "student-02.kubeconfig").read_bytes() != written["student-02.kubeconfig"]  # a new token
    assert sorted(p.name for p in out.iterdir()) == ["student-01.kubeconfig", "student-02.kubeconfig"]

    admin = ClassAdmin(api.kubeconfig)
    labels = _namespaces(admin)["lab-student-01"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert classroom.student_of(labels) == "student-01"

    student = KubernetesEngine(kubeconfig=out / "student-01.kubeconfig")
    assert student.namespace == "lab-student-01"
    with labkit.Lab(seed, engine=student, progress=False) as lab:
        lab.apply().wait_ready(timeout=120)
        lab.exec("ls -la /var/log")
        lab.exec(["tail", "-n", "1", "/usr/share/nginx/html/index.html"], container="consumer")
        lab.wait_serving().fetch()
        report = lab.measure(lines=1, timeout=30)
        table = admin.status()
        assert table.at["student-01", "phase"] == "Running" and table.at["student-01", "next step"] == "deleted"
    assert report.passed, report
    table = admin.status()
    assert table.at["student-01", "steps"] == "7/7" and table.at["student-01", "verdict"] == "passed"
    bounds = table[["p50 low (ms)", "p50 (ms)", "p50 high (ms)"]].to_numpy(dtype=float)[0]
    low, p50, high = bounds
    assert low <= p50 <= high
    assert table.at["student-02", "steps"] == "0/7" and table.at["student-02", "next step"] == "applied"

    # Another student's namespace is closed to this token.
    other = KubernetesEngine(kubeconfig=out / "student-01.kubeconfig", namespace="lab-student-02")
    with pytest.raises(EngineError, match=r'cannot (get|patch) resource "pods".*lab-student-02'):
        labkit.Lab(seed, engine=other, progress=False).apply()

    assert main(["class", "status", "--kubeconfig", api.kubeconfig, "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "student-01" in shown and "7/7" in shown and "student-02" in shown
    assert shown.count("token until") == 2 and "h " in shown.split("tokens (kubeconfigs in")[1]
    (out / "student-02.kubeconfig").unlink()
    assert main(["class", "status", "--kubeconfig", api.kubeconfig, "--out", str(out)]) == 0
    assert f"student-02  no kubeconfig in {out}" in capsys.readouterr().out


def test_a_namespace_the_class_did_not_make_is_refused_and_delete_takes_only_the_class(api, tmp_path):
    admin = ClassAdmin(api.kubeconfig)
    admin.core.create_namespace({"metadata": {"name": "lab-student-02", "labels": {"team": "data"}}})
    out = tmp_path / "kubeconfigs"
    with pytest.raises(ClassError, match=r"lab-student-02 already exists and labkit's class did not create"):
        admin.create(3, out)
    assert set(_namespaces(admin)) == {"default", "lab-student-02"}  # nothing created, nothing changed
    assert _namespaces(admin)["lab-student-02"]["team"] == "data"  # untouched: no label of the class added
    assert classroom.student_of(_namespaces(admin)["lab-student-02"]) is None

    made = admin.create(["ada", "grace"], out)
    assert [m.namespace for m in made] == ["lab-ada", "lab-grace"]
    assert admin.delete(["ada"], out) == ["lab-ada"]
    assert not (out / "ada.kubeconfig").exists() and (out / "grace.kubeconfig").exists()
    with pytest.raises(ClassError, match="no namespace of labkit's class for student-02"):
        admin.delete(["student-02"], out)
    assert admin.delete(None, out) == ["lab-grace"]
    left = _namespaces(admin)
    assert "lab-student-02" in left and left["lab-student-02"]["team"] == "data"


def test_an_instructor_without_the_rights_is_told_which_rule_is_missing(api, tmp_path, capsys):
    from tests.k8s_standin import Rule

    reader = api.kubeconfig_for("default", rules=[Rule(verbs=("get", "list"), resources=("namespaces",))])
    assert main(["class", "create", "1", "--out", str(tmp_path / "k"), "--kubeconfig", reader]) == 2
    said = capsys.readouterr().err
    assert 'cannot create resource "namespaces"' in said
    assert '{apiGroups: [""], resources: ["namespaces"], verbs: ["create"]} cluster-wide' in said


def test_a_student_whose_token_expired_is_told_when_and_what_to_do(api, tmp_path):
    out = tmp_path / "kubeconfigs"
    ClassAdmin(api.kubeconfig).create(1, out, token_hours=1)
    path = out / "student-01.kubeconfig"
    engine = KubernetesEngine(kubeconfig=path)
    assert engine.namespace == "lab-student-01"
    api.advance_clock(timedelta(hours=2))
    # The file says when its token expires; pretend that moment has passed on this machine too.
    doc = yaml.safe_load(path.read_text())
    doc["extensions"][0]["extension"]["tokenExpires"] = classroom.format_time(datetime.now(UTC) - timedelta(hours=1))
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(AuthenticationError, match=r"token in .*student-01.kubeconfig expired at .*labkit class create"):
        KubernetesEngine(kubeconfig=path)


def test_bad_arguments_say_what_to_give(api, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["class", "create", "3", "--hours", "inf", "--kubeconfig", api.kubeconfig])
    assert "'inf' is not a finite number" in capsys.readouterr().err
    assert main(["class", "create", "0", "--kubeconfig", api.kubeconfig, "--out", str(tmp_path / "k")]) == 2
    assert "at least one student" in capsys.readouterr().err
    assert main(["class", "create", "Ada", "--kubeconfig", api.kubeconfig, "--out", str(tmp_path / "k")]) == 2
    assert "cannot name a namespace" in capsys.readouterr().err
    assert main(["class", "render", "student-07"]) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [o["kind"] for o in objects] == ["Namespace", "ServiceAccount", "Role", "RoleBinding"]
    assert os.environ.get("KUBECONFIG") != api.kubeconfig  # nothing leaked into the environment


def test_a_lab_outside_a_class_leaves_no_record_in_the_namespace(api, seed):
    engine = KubernetesEngine(kubeconfig=api.kubeconfig)  # an administrator's, not one 'labkit class' wrote
    with labkit.Lab(seed, engine=engine, progress=False) as lab:
        lab.apply().wait_ready(timeout=120)
    kept = ClassAdmin(api.kubeconfig).core.list_namespaced_config_map("default").items
    assert PROGRESS_CONFIGMAP not in [c.metadata.name for c in kept]
    assert {"applied", "ready", "deleted"} <= set(progress_of(engine.records[PROGRESS_CONFIGMAP]).steps)
