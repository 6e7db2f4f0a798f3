"""The docs beside the README: the MkDocs site builds strictly (no broken link or anchor, no warning), every page in
its nav is built, the API reference documents every public name of ``gankit``, the README stays a short front door,
and every relative link in the README and the docs points at a file that exists."""

import dataclasses
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import gankit

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"

# [text](target) and ![alt](target), not inside code; the target ends at whitespace or ")".
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
# The heading mkdocstrings writes for each documented object: its id, then its (possibly overridden) heading text.
_DOC_HEADING = re.compile(r'<h\d id="([^"]+)" class="doc doc-heading">(.*?)<a ', re.S)


def _public_names() -> list[str]:
    """The names of ``gankit.__all__`` that are objects to document (``__version__`` is a plain string)."""
    return [name for name in gankit.__all__ if not (name.startswith("__") and name.endswith("__"))]


def _nav_pages(nav) -> list[str]:
    """Every Markdown file named in mkdocs.yml's nav, in order."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return [page for item in nav for page in _nav_pages(item)]


def _relative_links(markdown: str) -> list[str]:
    """The relative link targets of a Markdown text, with their #anchors (code blocks and spans skipped)."""
    text = _INLINE_CODE.sub("", _FENCE.sub("", markdown))
    targets = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor on the same page
        targets.append(target)
    return targets


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's toc (and GitHub) gives a heading: lower case, punctuation dropped, dashes."""
    text = re.sub(r"[^\w\s-]", "", _INLINE_CODE.sub(lambda m: m.group(0)[1:-1], heading).lower())
    return re.sub(r"[-\s]+", "-", text).strip("-")


def _anchors(markdown: Path) -> set[str]:
    """The anchors of a Markdown file's headings (outside code blocks)."""
    text = _FENCE.sub("", markdown.read_text(encoding="utf-8"))
    return {_slug(line.lstrip("#").strip()) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


@pytest.fixture(scope="module")
def mkdocs_config() -> dict:
    """mkdocs.yml, parsed (it holds no Python tags, so the safe loader reads it)."""
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built by ``mkdocs build --strict`` into a temporary folder."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


def test_the_site_builds_strictly_with_a_page_for_every_nav_entry(site, mkdocs_config):
    pages = _nav_pages(mkdocs_config["nav"])
    assert "index.md" in pages and "reference/index.md" in pages
    directory_urls = mkdocs_config.get("use_directory_urls", True)
    for page in pages:
        stem = page[: -len(".md")]
        if page == "index.md" or page.endswith("/index.md"):
            built = site / f"{stem}.html"
        else:
            built = site / stem / "index.html" if directory_urls else site / f"{stem}.html"
        assert built.is_file(), f"{page} in the nav was not built ({built.relative_to(site)} missing)"


def test_every_markdown_page_is_in_the_nav(mkdocs_config):
    pages = set(_nav_pages(mkdocs_config["nav"]))
    on_disk = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert on_disk - pages == set(), "pages missing from mkdocs.yml's nav"
    assert pages - on_disk == set(), "nav entries with no page"


def test_the_api_reference_documents_every_public_name(site):
    page = (site / "reference" / "index.html").read_text(encoding="utf-8")
    documented = set()
    for anchor, heading in _DOC_HEADING.findall(page):
        documented.add(anchor)
        documented.add(html.unescape(re.sub(r"<[^>]+>", "", heading)).strip())
    missing = [name for name in _public_names() if f"gankit.{name}" not in documented]
    assert missing == [], f"gankit.__all__ names without an entry in the API reference: {missing}"


def test_the_readme_is_a_short_front_door():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    for command in ("make demo", "make test"):
        assert command in text
    assert "CC BY-SA 3.0" in text  # the MNIST licence line


@pytest.mark.parametrize("markdown", [README, *sorted(DOCS.rglob("*.md"))],
                         ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_relative_link_points_at_a_file_that_exists(markdown):
    targets = _relative_links(markdown.read_text(encoding="utf-8"))
    broken = [target for target in targets if not (markdown.parent / target.split("#", 1)[0]).resolve().exists()]
    assert broken == [], f"links in {markdown.relative_to(ROOT)} to files that do not exist"


def test_the_readme_links_to_headings_that_exist():
    # mkdocs build --strict checks the anchors between docs pages; the README is not part of the site.
    missing = []
    for target in _relative_links(README.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        if anchor and path.endswith(".md") and anchor not in _anchors(ROOT / path):
            missing.append(target)
    assert missing == [], "README links to headings that do not exist"


@pytest.mark.parametrize("name", _public_names())
def test_every_public_name_has_a_docstring(name):
    obj = getattr(gankit, name)
    # A class's own docstring: not one inherited from a base class, nor the signature a dataclass writes when there is
    # none.
    doc = vars(obj).get("__doc__") if isinstance(obj, type) else obj.__doc__
    if doc and dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
        doc = None
    assert doc and doc.strip(), f"gankit.{name} has no docstring"
