"""The README and docs/ state what the project is and does: short, linked, and free of history.

History belongs in the git log. The word "session" may appear only as pytest's fixture scope
(``scope="session"``); any other use in the docs, the library, benchmarks, params files or notebooks
fails, since in this project it has only ever named who did what when.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 300
ALLOWED_SESSION = re.compile(r"""scope\s*=\s*["']session["']""")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _project_texts() -> list[tuple[Path, str]]:
    """Every text a user reads: README, docs, library, benchmarks, params, tests (not this file, whose
    examples must name sessions), notebooks (cell sources), Makefile and pyproject."""
    paths = [README, ROOT / "Makefile", ROOT / "pyproject.toml", *DOCS]
    for folder, pattern in (("alseg_utils", "*.py"), ("benchmarks", "*.py"), ("benchmarks", "*.sh"),
                            ("params", "*.yaml"), ("tests", "*.py")):
        paths += sorted((ROOT / folder).rglob(pattern))
    texts = [(p, p.read_text(encoding="utf-8")) for p in paths if p.is_file() and p != Path(__file__).resolve()]
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        texts.append((nb, "\n".join("".join(c["source"]) for c in cells)))
    return texts


def history_mentions(text: str) -> list[str]:
    """Lines of ``text`` that use the word "session" other than as pytest's fixture scope."""
    return [line.strip() for line in text.splitlines()
            if re.search(r"session", ALLOWED_SESSION.sub("", line), re.IGNORECASE)]


def test_history_mentions_finds_sessions_but_not_fixture_scopes() -> None:
    assert history_mentions('@pytest.fixture(scope="session")\nx = 1') == []
    assert history_mentions("The sixth Session's sweep chose it.") == ["The sixth Session's sweep chose it."]
    assert history_mentions("# sessions later") == ["# sessions later"]


@pytest.mark.parametrize("path,text", _project_texts(), ids=lambda v: v.name if isinstance(v, Path) else "")
def test_no_history_by_session(path: Path, text: str) -> None:
    assert history_mentions(text) == [], f"{path.relative_to(ROOT)} names the project's history"


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move details to docs/"


def test_docs_folder_has_the_topics_the_readme_links() -> None:
    names = {p.name for p in DOCS}
    for topic in ("params.md", "quick_settings.md", "results.md", "performance.md", "authors_code.md",
                  "choices.md", "dependencies.md", "layout.md"):
        assert topic in names


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_relative_links_exist(path: Path) -> None:
    missing = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # web addresses and anchors
        if not (path.parent / target.split("#")[0]).exists():
            missing.append(target)
    assert missing == [], f"{path.relative_to(ROOT)} links to missing files: {missing}"
