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
