"""``labkit verify``: the findings table, its exit code and renderings on plain data; the runner on plain
functions; the command against the local engine and the API stand-in."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from labkit.cli import main
from labkit.errors import ExecError, LabkitError
from labkit.verify import findings, scenarios
from labkit.verify.findings import DIFFERS, HELD, INTERRUPTED, NOT_CHECKABLE, Finding, Outcome
from labkit.verify.runner import Context, Scenario, progress_name, run
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _f(slug: str, status: str, named: bool = False, seen: str = "seen") -> Finding:
    return Finding(slug, slug.replace("-", " "), status, seen, named, 1.0)


# -- the findings, on plain data ------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "interrupted", "code"),
    [
        ([HELD, HELD], False, 0),
        ([HELD, NOT_CHECKABLE], False, 0),
        ([HELD, (DIFFERS, True)], False, 0),  # a named difference of the engine does not fail the run
        ([HELD, DIFFERS, (DIFFERS, True)], False, 1),
        ([HELD, INTERRUPTED], True, 130),
        ([DIFFERS, INTERRUPTED], True, 130),
        ([], False, 0),
    ],
)
def test_exit_code_rule(statuses, interrupted, code):
    found = [_f(f"fact-{i}", *(s if isinstance(s, tuple) else (s,))) for i, s in enumerate(statuses)]
    assert findings.exit_code(found, interrupted) == code


def test_only_a_differing_fact_can_be_a_named_difference():
    with pytest.raises(ValueError, match="named difference"):
        Outcome(HELD, "x", named=True)
    with pytest.raises(ValueError, match="status must be one of"):
        Outcome("fine", "x")


def test_text_table_lines_up_and_says_what_named_means():
    found = [_f("exit-code-127", HELD, seen="exit code 127"), _f("restarts-after-a-crash", DIFFERS, True)]
    text = findings.render_text(found)
    rows = text.splitlines()
    assert rows[0].split() == ["FACT", "STATUS", "TOOK", "WHAT", "WAS", "SEEN"]
    assert rows[1].index("held") == rows[2].index("differs (named)") == rows[0].index("STATUS")
    assert "(named): a difference of this engine that docs/facts.md names" in text
    assert rows[-1] == (
        "result: 1 held, 1 differs (a named difference): every fact held, or differs only as the register names "
        "for this engine"
    )


def test_markdown_report_escapes_cells_and_links_each_fact():
    found = [_f("range-requests", DIFFERS, seen="a | pipe and a \\ backslash")]
    md = findings.render_markdown(found, "podman | 4.3", WHEN)
    assert md.startswith("# labkit verify\n\n- engine: podman \\| 4.3\n- date: 2026-03-01T09:30:00+00:00\n")
    row = next(line for line in md.splitlines() if line.startswith("| [range requests]"))
    assert row == (
        "| [range requests](docs/facts.md#range-requests) (`range-requests`) | differs | 1 s | "
        "a \\| pipe and a \\\\ backslash |"
    )
    assert row.count(" | ") == 3  # four cells: the pipe in the text is not a column


def test_html_report_escapes_everything():
    found = [_f("subpath", DIFFERS, seen="<script>alert('x')</script> & more")]
    page = findings.render_html(found, "kubernetes <v1.31> & co", WHEN)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert "engine: kubernetes &lt;v1.31&gt; &amp; co<br>date: 2026-03-01T09:30:00+00:00" in page
    assert '<a href="docs/facts.md#subpath">subpath</a>' in page


@pytest.mark.parametrize(("name", "fmt"), [("r.md", "md"), ("R.HTML", "html"), ("dir/report.html", "html")])
def test_report_suffix_names_the_format(name, fmt):
    assert findings.report_format(name) == fmt


@pytest.mark.parametrize("name", ["report.txt", "report", "report.htm"])
def test_report_suffix_other_than_md_or_html_is_refused(name):
    with pytest.raises(ValueError, match=r"must end in \.md \(Markdown\) or \.html"):
        findings.report_format(name)


# -- the runner, on plain functions ------------------------------------------------------------


def test_runner_turns_errors_into_differs_and_stops_at_ctrl_c_with_the_rest_marked():
    calls = []

    def held(ctx):
        calls.append("held")
        ctx.say("waited 10 s")
        return Outcome(HELD, "3 lines")

    def kit_error(ctx):
        calls.append("kit_error")
        raise ExecError("command ['ls'] exited with code 2\nmore detail", returncode=2)

    def interrupted(ctx):
        calls.append("interrupted")
        raise KeyboardInterrupt

    def never(ctx):
        calls.append("never")
        return Outcome(HELD, "")

    chosen = [
        Scenario("a-fact", "A fact", held),
        Scenario("b-fact", "emptyDir b", kit_error),
        Scenario("c-fact", "C fact", interrupted),
        Scenario("d-fact", "D fact", never),
    ]
    said: list[str] = []
    out: list[str] = []
    result = run(chosen, Context(engine=None, say=said.append), out=out.append)
    assert calls == ["held", "kit_error", "interrupted"]
    assert result.interrupted
    assert [(f.slug, f.status) for f in result.findings] == [
        ("a-fact", HELD),
        ("b-fact", DIFFERS),
        ("c-fact", INTERRUPTED),
        ("d-fact", INTERRUPTED),
    ]
    assert result.findings[1].seen == "the check stopped: command ['ls'] exited with code 2"
    assert said == ["waited 10 s"]
    assert out == [
        "[1/4] a fact ...",
        "[1/4] a fact ... held (3 lines)",
        "[2/4] emptyDir b ...",
        "[2/4] emptyDir b ... differs (the check stopped: command ['ls'] exited with code 2)",
        "[3/4] c fact ...",
        "[3/4] c fact ... not checked: interrupted",
    ]
    text = findings.render_text(result.findings, result.interrupted)
    assert "d-fact" in text and "interrupted: the facts not checked are marked so" in text
    assert findings.exit_code(result.findings, result.interrupted) == 130


def test_progress_names_follow_the_titles():
    assert progress_name("Restarts after a crash") == "restarts after a crash"
    assert progress_name("Exit code 127") == "exit code 127"
    assert progress_name("emptyDir lifetime") == "emptyDir lifetime"
    assert progress_name("subPath") == "subPath"


def _sections() -> dict[str, str]:
    """The register's sections by slug (as GitHub makes anchors), with their titles."""
    titles = re.findall(r"^## (.+)$", (ROOT / "docs" / "facts.md").read_text(), re.M)
    return {re.sub(r"[^a-z0-9 -]", "", t.lower()).replace(" ", "-"): t for t in titles}


def test_every_scenario_is_a_section_of_the_register_under_its_title():
    sections = _sections()
    assert {s.slug: s.title for s in scenarios.SCENARIOS}.items() <= sections.items()
    assert len({s.slug for s in scenarios.SCENARIOS}) == len(scenarios.SCENARIOS) >= 12


def test_only_selects_in_the_usual_order_and_names_unknown_facts():
    assert [s.slug for s in scenarios.select(["subpath", "exit-code-127"])] == ["exit-code-127", "subpath"]
    with pytest.raises(ValueError, match=r"no fact called 'no-such-fact'; .* exit-code-127"):
        scenarios.select(["exit-code-127", "no-such-fact"])


# -- the command: bad input, before anything runs ------------------------------------------------


def test_unknown_fact_exits_2_before_anything_runs(capsys):
    assert main(["verify", "--engine", "no-such-engine", "--only", "no-such-fact"]) == 2
    err = capsys.readouterr().err
    assert "no fact called 'no-such-fact'" in err and "emptydir-lifetime" in err


def test_bad_report_suffix_exits_2_before_anything_runs(capsys, tmp_path):
    assert main(["verify", "--engine", "no-such-engine", "--report", str(tmp_path / "r.txt")]) == 2
    assert "must end in .md (Markdown) or .html" in capsys.readouterr().err
    assert not (tmp_path / "r.txt").exists()


def test_unreachable_cluster_exits_2_naming_the_kubeconfig_and_the_server(capsys, tmp_path, monkeypatch):
    pytest.importorskip("kubernetes")
    server = f"https://127.0.0.1:{free_port()}"
    kubeconfig = tmp_path / "away.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "away", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "away", "context": {"cluster": "away", "user": "u"}}],
                "current-context": "away",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with pytest.warns(UserWarning):  # the kubeconfig skips the server's certificate check, and the kit says so
        code = main(["verify", "--engine", "kubernetes", "--only", "exit-code-127"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Kubernetes API server at {server}, named by kubeconfig {kubeconfig}" in err


# -- the command on real engines ---------------------------------------------------------------


@pytest.mark.podman
def test_quick_facts_on_the_local_engine(capsys, tmp_path):
    report = tmp_path / "local.html"
    only = ["emptydir-lifetime", "exit-code-127", "emptydir-sizelimit-on-disk", "deleting-a-pod"]
    assert main(["verify", "--engine", "podman", "--only", *only, "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "[1/4] emptyDir lifetime ... held" in out
    assert "[2/4] exit code 127 ... held (exit code 127" in out
    # Podman has no eviction: a named difference, which does not fail the run.
    assert re.search(
        r"\[3/4\] emptyDir sizeLimit on disk \.\.\. differs \(.*not enforced.*; a named difference of this engine, "
        r"docs/facts\.md#emptydir-sizelimit-on-disk\)",
        out,
    )
    assert "[4/4] deleting a pod ... not checkable here (the podman engine deletes a pod at once" in out
    assert "differs (named)" in out and "result: 2 held, 1 differs (a named difference), 1 not checkable here" in out
    page = report.read_text()
    assert "<td>differs (named)</td>" in page and "engine: podman" in page


def _restart_row(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("restarts-after-a-crash "))


@pytest.mark.podman
def test_every_fact_holds_on_the_api_standin(kube, capsys, tmp_path, monkeypatch):
    """The issue's bar: against the stand-in, in ``make test``, every fact holds."""
    monkeypatch.setenv("KUBECONFIG", kube.kubeconfig)
    monkeypatch.delenv("LABKIT_NAMESPACE", raising=False)
    report = tmp_path / "standin.md"
    facts = [s.slug for s in scenarios.SCENARIOS]
    code = main(["verify", "--engine", "kubernetes", "--report", str(report)])
    out = capsys.readouterr().out
    sys.stdout.write(out)  # shown with -s, for the README's sample
    assert "in namespace default (the current one)" in out
    assert code == 0, out
    table = report.read_text()
    assert table.count("| held |") == len(facts), table
    assert "differs" not in table and "not checkable" not in table
    assert "held" in _restart_row(out) and "CrashLoopBackOff" in _restart_row(out)
    assert re.search(r"deleting-a-pod +held", out), out  # the tutorial's pod held its 30 s grace period


@pytest.mark.podman
def test_a_temporary_namespace_is_made_and_removed_or_the_current_one_used_without_the_right(kube, capsys):
    from labkit.engines.kubernetes import KubernetesEngine

    admin = KubernetesEngine(kubeconfig=kube.kubeconfig)
    before = {n.metadata.name for n in admin.api.list_namespace().items}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", kube.kubeconfig)
        assert main(["verify", "--engine", "kubernetes", "--only", "exit-code-127", "--temporary-namespace"]) == 0
    out = capsys.readouterr().out
    made = re.search(r"in namespace (labkit-verify-[0-9a-f]{6}) \(temporary, deleted at the end\)", out)
    assert made and f"namespace {made.group(1)} deleted" in out
    assert "[1/1] exit code 127 ... held" in out
    after = admin.api.list_namespace().items
    assert {n.metadata.name for n in after if not n.metadata.deletion_timestamp} <= before

    student = kube.kubeconfig_for(namespace="lab-student-02")  # may work on pods there, not create namespaces
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", student)
        assert main(["verify", "--engine", "kubernetes", "--only", "exit-code-127", "--temporary-namespace"]) == 0
    out = capsys.readouterr().out
    assert "in namespace lab-student-02 (the current one: these credentials may not create a temporary namespace)" in (
        out
    )


@pytest.mark.podman
def test_delete_with_the_pods_own_grace_period_or_a_given_one(kube, seed):
    import labkit
    from labkit.engines.kubernetes import KubernetesEngine

    engine = KubernetesEngine(kubeconfig=kube.kubeconfig)
    with labkit.Lab(seed, engine=engine, name="grace-default", progress=False) as lab:
        lab.apply().wait_ready()
        assert engine.delete_with_grace(lab.pod) == 30  # terminationGracePeriodSeconds, defaulted by the server
    with labkit.Lab(seed, engine=engine, name="grace-given", progress=False) as lab:
        lab.apply().wait_ready()
        assert engine.delete_with_grace(lab.pod, 5) == 5
    assert engine.delete_with_grace(lab.pod, 5) is None  # already gone: nothing to delete


def test_an_unexpected_kit_error_is_a_finding_not_a_crash():
    def broken(ctx):
        raise LabkitError("first line\nsecond line")

    result = run([Scenario("x", "X", broken)], Context(engine=None), out=lambda text: None)
    assert [(f.status, f.seen) for f in result.findings] == [(DIFFERS, "the check stopped: first line")]


def test_ctrl_c_prints_the_partial_table_writes_the_report_and_exits_130(monkeypatch, tmp_path, capsys):
    import labkit.verify

    def held(ctx):
        return Outcome(HELD, f"on {ctx.engine.name}")

    def interrupted(ctx):
        raise KeyboardInterrupt

    chosen = [Scenario("a-fact", "A fact", held), Scenario("b-fact", "B fact", held)]
    chosen += [Scenario("c-fact", "C fact", interrupted), Scenario("d-fact", "D fact", held)]
    monkeypatch.setattr(labkit.verify, "select", lambda only: chosen)
    report = tmp_path / "partial.md"
    assert labkit.verify.verify("fake", report=report) == 130
    captured = capsys.readouterr()
    assert "labkit verify: 4 fact(s) on fake engine" in captured.out
    rows = [line.split()[:2] for line in captured.out.split("FACT ", 1)[1].splitlines()[1:5]]
    assert rows == [["a-fact", "held"], ["b-fact", "held"], ["c-fact", "not"], ["d-fact", "not"]]
    assert "not checked: interrupted" in report.read_text()
    assert "interrupted; the table above is partial" in captured.err
