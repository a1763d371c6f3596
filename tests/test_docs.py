"""The documentation site builds cleanly and holds what it should (`make docs`).

The build is the Makefile's: warnings are errors and nitpicky mode makes a
broken cross-reference a warning, so a docstring that names a labkit object
that is not there fails here, in `make test`, and so in CI. The notebooks are
rendered from their committed outputs (never run), so no engine is needed.
"""

from __future__ import annotations

import html
import importlib.util
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
_MISSING = [name for name in ("sphinx", "myst_nb", "furo") if importlib.util.find_spec(name) is None]

pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"the docs tools are not installed ({', '.join(_MISSING)}): pip install -e '.[docs]'",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built as `make docs` builds it, into a temporary directory."""
    out = tmp_path_factory.mktemp("docs")
    cmd = [sys.executable, "-m", "sphinx", "-M", "html", "docs", str(out), "-E", "-W", "--keep-going", "-n", "-q"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"sphinx-build failed ({done.returncode}):\n{done.stderr[-6000:]}{done.stdout[-2000:]}"
    return out / "html"


def text_of(page: Path) -> str:
    """The page's visible text (its article), whitespace collapsed."""
    body = page.read_text(encoding="utf-8")
    start, end = body.find("<article"), body.find("</article>")
    body = body[start:end] if 0 <= start < end else body
    body = re.sub(r"<script\b.*?</script>", " ", body, flags=re.S)
    return _squash(html.unescape(re.sub(r"<[^>]+>", " ", body)))


# What Sphinx's smart quotes make of plain punctuation, undone, so text compares as written.
_TYPOGRAPHY = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "--", "\u2014": "---", "\u2026": "..."}
)


def _squash(text: str) -> str:
    """Text without terminal colours, with plain punctuation and single spaces."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text).translate(_TYPOGRAPHY).split())


def _role_text(match: re.Match[str]) -> str:
    role, short, target = match.groups()
    shown = target.rsplit(".", 1)[-1] if short else target
    return shown + ("()" if role in ("func", "meth") else "")


def _rst_to_text(line: str) -> str:
    """A docstring line as it reads on the page: roles and literals without their markup."""
    line = re.sub(r":(\w+):`(~?)([\w.]+)`", _role_text, line)
    return line.replace("``", "")


def test_home_page_is_the_readme(site: Path) -> None:
    page = text_of(site / "index.html")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = [line[3:] for line in readme.splitlines() if line.startswith("## ")]
    assert "Documentation site" in headings
    for heading in headings:
        assert _squash(heading.replace("`", "")) in page, f"README section {heading!r} is not on the home page"


def test_every_notebook_has_a_page_with_its_committed_outputs(site: Path) -> None:
    assert NOTEBOOKS, "no notebooks found"
    for nb_path in NOTEBOOKS:
        page_path = site / "notebooks" / f"{nb_path.stem}.html"
        assert page_path.exists(), f"no page for {nb_path.name}"
        raw = page_path.read_text(encoding="utf-8")
        page = text_of(page_path)
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        title = next(line for line in "".join(nb["cells"][0]["source"]).splitlines() if line.startswith("# "))
        assert _squash(title[2:].replace("*", "").replace("`", "")) in page, nb_path.name
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                if out["output_type"] == "stream":
                    shown = "".join(out["text"])
                elif set(out.get("data", {})) <= {"text/plain", "application/vnd.jupyter.widget-view+json"}:
                    shown = "".join(out.get("data", {}).get("text/plain", ""))  # a widget: its saved text
                else:
                    continue  # HTML tables and figures are shown as HTML and images
                first_line = next((line for line in shown.splitlines() if line.strip()), "")
                assert _squash(first_line) in page, f"{nb_path.name}: output {first_line!r} not on its page"
        # Widgets show as their saved text: no widget view waiting for JavaScript from a CDN.
        assert "application/vnd.jupyter.widget-view+json" not in raw, nb_path.name
        assert "embed-amd.js" not in raw and "require.min.js" not in raw, nb_path.name


def test_notebook_02_shows_its_report(site: Path) -> None:
    page = text_of(site / "notebooks" / "02-write-to-serve-latency.html")
    # The committed output of print(report): the notebook must be committed with its outputs.
    assert "write-to-serve latency report" in page, "notebook 02's page shows no report (committed without outputs?)"


def test_api_reference_documents_the_public_surface(site: Path) -> None:
    import labkit

    raw = (site / "api.html").read_text(encoding="utf-8")
    page = text_of(site / "api.html")
    for name in labkit.__all__:
        obj = getattr(labkit, name)
        anchor = f"{obj.__module__}.{obj.__qualname__}"
        assert f'id="{anchor}"' in raw, f"labkit.{name} ({anchor}) is not in the API reference"
    for obj in (labkit.Lab, labkit.read_lines, labkit.LabkitError, labkit.Lab.measure):
        doc = inspect.getdoc(obj)
        assert doc is not None, f"{obj.__qualname__} has no docstring"
        first_line = doc.splitlines()[0]
        assert _squash(_rst_to_text(first_line)) in page, first_line


# -- Links to the register of facts (docs/facts.md) ------------------------------------------
# The notebooks and the README link to the sections of docs/facts.md. The site build checks
# every such link (a missing section fails it); these tests also say, without building the
# site, that each link names a section that exists, with the path that works in the
# repository, that every section is linked from somewhere (or is listed below as read only by
# the library's maintainers), and that a notebook making one of the claims below links to it.

FACTS = ROOT / "docs" / "facts.md"
README = ROOT / "README.md"
FACTS_LINK = re.compile(r"\]\(((?:\.\./)?docs/)?facts\.md(?:#([^)\s]*))?\)")

# Sections that no notebook or README paragraph states: they back the library's own behaviour.
LIBRARY_ONLY: set[str] = set()

# A notebook whose markdown matches the pattern makes that claim, so it must link to that section.
CLAIMS = {
    r"If-Modified-Since|If-None-Match": "conditional-requests-and-stale-pages",
    r"`Range`|range request": "range-requests",
    r"O_APPEND|interleav": "appends-from-two-writers",
    r"copytruncate|rename and recreate": "rotating-a-served-file",
    r"kubectl delete pod`? (sends|takes)|SIGTERM": "deleting-a-pod",
    r"PID 1": "pid-1-and-signals",
    r"kubectl port-forward": "port-forward",
    r"default-container": "default-container-for-exec",
    r"exit code\s+127": "exit-code-127",
    r"hostname \(the pod's name|hostname in a container": "hostname-of-a-container",
    r"`emptyDir` starts empty": "emptydir-lifetime",
    r"answers 404 for `/index.html`|counts as ready": "ready-is-not-serving",
    r"`\$\(date\)` prints whole seconds": "timestamps-from-date",
    r"served by nginx at the next fetch|first request after the\s+write|first poll after": (
        "nginx-serves-a-changed-file-at-once"
    ),
}
# Notebooks whose claims are not yet required to link to the register (their links are still checked).
CLAIMS_PENDING: set[str] = set()


def _facts_sections() -> list[str]:
    try:
        from myst_parser.slugs import github_slugify as slugify
    except ImportError:  # myst-parser before 5.2
        from myst_parser.mdit_to_docutils.base import default_slugify as slugify
    headings = [line[3:].strip() for line in FACTS.read_text(encoding="utf-8").splitlines() if line.startswith("## ")]
    return [slugify(h) for h in headings]


def _markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def _facts_links(path: Path) -> list[tuple[str, str]]:
    """(path prefix, section) of every link from ``path`` to facts.md."""
    return [(m.group(1) or "", m.group(2) or "") for m in FACTS_LINK.finditer(_markdown_of(path))]


def test_the_register_has_the_sections_others_link_to() -> None:
    sections = _facts_sections()
    assert len(sections) == len(set(sections)), "two sections of docs/facts.md have the same anchor"
    first = ["restarts-after-a-crash", "deleting-a-pod", "pid-1-and-signals", "exec-and-a-client-that-goes-away"]
    assert sections[: len(first)] == first, sections[: len(first)]
    text = FACTS.read_text(encoding="utf-8")
    for part in ("**Sources:**", "**Engines:**", "**Held by:**"):
        assert text.count(part) == len(sections), f"every section of docs/facts.md has its {part}"


def test_every_link_to_the_register_names_a_section_that_exists() -> None:
    sections = set(_facts_sections())
    for path in [README, *NOTEBOOKS]:
        expected = "docs/" if path == README else "../docs/"
        for prefix, section in _facts_links(path):
            assert prefix == expected, f"{path.name}: link to {prefix}facts.md; from here it is {expected}facts.md"
            assert not section or section in sections, f"{path.name}: facts.md has no section #{section}"


def test_every_section_of_the_register_is_linked_from_somewhere() -> None:
    linked = {section for path in [README, *NOTEBOOKS] for _, section in _facts_links(path) if section}
    unlinked = [s for s in _facts_sections() if s not in linked and s not in LIBRARY_ONLY]
    assert not unlinked, f"sections of docs/facts.md that no notebook or README links to: {unlinked}"
    assert set(_facts_sections()) >= LIBRARY_ONLY, LIBRARY_ONLY - set(_facts_sections())


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_a_notebook_that_makes_a_claim_links_to_its_fact(notebook: Path) -> None:
    if notebook.name in CLAIMS_PENDING:
        pytest.skip(f"{notebook.name} is linked to the register in a change of its own")
    text = _markdown_of(notebook)
    linked = {section for _, section in _facts_links(notebook)}
    missing = {
        section: re.search(pattern, text).group(0)  # type: ignore[union-attr]
        for pattern, section in CLAIMS.items()
        if re.search(pattern, text) and section not in linked
    }
    assert not missing, f"{notebook.name} makes these claims without linking to their facts: {missing}"


def test_the_site_maps_notebook_links_to_the_register() -> None:
    """The same link works in the repository and on the site (see docs/conf.py)."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import conf  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "docs"))
    source = ["see [it](../docs/facts.md#deleting-a-pod) and [that](https://example.org/docs/facts.md)"]
    conf._facts_links_from_notebooks(None, "notebooks/01-sidecar-basics", source)
    assert source == ["see [it](/facts.md#deleting-a-pod) and [that](https://example.org/docs/facts.md)"]
    untouched = ["[it](../docs/facts.md#deleting-a-pod)"]
    conf._facts_links_from_notebooks(None, "index", untouched)
    assert untouched == ["[it](../docs/facts.md#deleting-a-pod)"]
