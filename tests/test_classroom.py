"""What a class is made of, decided on plain data: names, each student's objects and rules, their kubeconfig."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from labkit import classroom, progress


def test_a_number_of_students_gets_numbered_names_that_sort():
    assert classroom.student_names(3) == ["student-01", "student-02", "student-03"]
    assert (
        classroom.student_names(120, prefix="p")[-1] == "p-120"
        and classroom.student_names(120, prefix="p")[0] == "p-001"
    )
    assert classroom.student_names(["ada", "grace"]) == ["ada", "grace"]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (0, "at least one student"),
        ([], "name at least one student"),
        (["Ada"], "cannot name a namespace"),
        (["ada-"], "cannot name a namespace"),
        (["a" * 60], "at most 59 characters"),
        (["ada", "bob", "ada"], "given twice: ada"),
    ],
)
def test_names_a_namespace_cannot_take_are_refused(given, message):
    with pytest.raises(ValueError, match=message):
        classroom.student_names(given)


def test_a_count_must_be_a_number_or_a_list():
    with pytest.raises(TypeError, match="number of students or a list"):
        classroom.student_names("40")


def test_each_student_gets_four_labelled_objects_in_their_namespace():
    objects = classroom.class_objects("student-07")
    assert [o["kind"] for o in objects] == ["Namespace", "ServiceAccount", "Role", "RoleBinding"]
    assert objects[0]["metadata"]["name"] == "lab-student-07" and "namespace" not in objects[0]["metadata"]
    for obj in objects:
        assert classroom.student_of(obj["metadata"]["labels"]) == "student-07"
        assert obj is objects[0] or obj["metadata"]["namespace"] == "lab-student-07"
    binding = objects[3]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "student-07", "namespace": "lab-student-07"}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "labkit-student"}


def test_the_role_grants_the_lab_and_never_secrets_or_anything_cluster_wide():
    rules = classroom.class_objects("s")[2]["rules"]
    granted = {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]}
    assert (
        ("pods", "patch") in granted and ("pods/exec", "create") in granted and ("pods/portforward", "get") in granted
    )
    assert not any(r.startswith(("secrets", "namespaces", "roles", "serviceaccounts")) for r, _ in granted)
    assert all(rule["apiGroups"] == [""] and "*" not in rule["verbs"] for rule in rules)
    progress = [r for r in rules if r.get("resourceNames")]
    assert progress == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["labkit-progress"],
            "verbs": ["get", "patch", "update"],
        }
    ]


def test_objects_without_all_the_class_labels_are_not_the_kits():
    labels = classroom.class_objects("ada")[0]["metadata"]["labels"]
    assert classroom.student_of(labels) == "ada"
    assert classroom.student_of({**labels, "app.kubernetes.io/managed-by": "helm"}) is None
    assert classroom.student_of({"labkit/student": "ada"}) is None
    assert classroom.student_of(None) is None


def test_a_student_kubeconfig_carries_the_ca_the_namespace_and_when_the_token_expires():
    expires = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)
    doc = classroom.student_kubeconfig(
        "ada", server="https://127.0.0.1:6443", token="t0k", expires=expires, ca_data="Q0E="
    )
    assert doc["clusters"][0]["cluster"] == {"server": "https://127.0.0.1:6443", "certificate-authority-data": "Q0E="}
    assert doc["contexts"][0]["context"] == {"cluster": "labkit-class", "user": "ada", "namespace": "lab-ada"}
    assert doc["users"][0]["user"] == {"token": "t0k"} and doc["current-context"] == "ada"
    assert classroom.token_expiry(doc) == expires
    insecure = classroom.student_kubeconfig("ada", server="https://x", token="t", expires=expires, insecure=True)
    assert insecure["clusters"][0]["cluster"] == {"server": "https://x", "insecure-skip-tls-verify": True}
    assert classroom.token_expiry({"apiVersion": "v1", "kind": "Config"}) is None


def test_times_are_written_and_read_as_the_api_server_writes_them():
    moment = datetime(2026, 12, 1, 6, 0, 5, tzinfo=UTC)
    assert classroom.format_time(moment) == "2026-12-01T06:00:05Z"
    assert classroom.parse_time("2026-12-01T06:00:05Z") == moment
    assert classroom.parse_time("soon") is None


def test_the_status_table_says_who_is_stuck_where_and_how_each_last_measured():
    finished = progress.to_record(
        progress.Progress(
            pod="multicontainer-pod",
            steps={s: f"2026-12-01T06:0{i}:00Z" for i, s in enumerate(progress.STEPS)},
            report={"verdict": "passed", "p50": 0.0123, "p50_low": 0.0101, "p50_high": 0.0145, "lines": 9},
        )
    )
    stuck = progress.to_record(progress.Progress(pod="p", steps={"applied": "2026-12-01T06:00:00Z"}))
    table = classroom.status_table(
        {
            "ada": ([{"phase": "Running", "restarts": 2}], finished),
            "bob": ([{"phase": "Pending", "restarts": 0}], stuck),
            "eve": ([], None),
        }
    )
    assert list(table.index) == ["ada", "bob", "eve"] and list(table.columns) == classroom.STATUS_COLUMNS
    assert [table.at["ada", c] for c in ["steps", "next step", "verdict", "restarts"]] == ["7/7", "done", "passed", 2]
    assert [table.at["ada", c] for c in ("p50 low (ms)", "p50 (ms)", "p50 high (ms)")] == [10.1, 12.3, 14.5]
    assert table["p50 (ms)"].isna().tolist() == [False, True, True]
    assert [table.at["bob", c] for c in ["steps", "next step", "phase", "verdict"]] == [
        "1/7",
        "ready",
        "Pending",
        "not measured",
    ]
    assert [table.at["eve", c] for c in ["steps", "next step", "pods", "phase"]] == ["0/7", "applied", 0, "no pod"]


def test_token_lines_say_how_long_each_token_lasts_and_what_to_do_when_it_does_not():
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    lines = classroom.token_lines(
        {
            "ada": now + timedelta(hours=11, minutes=58, seconds=30),
            "grace": now + timedelta(minutes=45),
            "linus": now - timedelta(minutes=1),
            "student-04": None,
        },
        now,
        "kubeconfigs",
    )
    assert lines == [
        "ada         token until 2026-12-01T21:58:30Z (11 h 58 min left)",
        "grace       token until 2026-12-01T10:45:00Z (0 h 45 min left); the next 'labkit class create' renews it",
        "linus       token EXPIRED at 2026-12-01T09:59:00Z; 'labkit class create' issues a new one",
        "student-04  no kubeconfig in kubeconfigs ('labkit class create' writes it)",
    ]
    assert classroom.token_lines({}, now, "kubeconfigs") == []
