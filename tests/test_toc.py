"""The table of contents and the chapters folder agree in both directions."""

from tools.toc import ROOT, resolve_entry, toc_entries, toc_notebooks


def test_every_toc_entry_exists():
    missing = [entry for entry in toc_entries() if resolve_entry(entry) is None]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_every_chapter_notebook_is_in_the_toc():
    listed = {path.resolve() for path in toc_notebooks()}
    on_disk = {path.resolve() for path in (ROOT / "chapters").rglob("*.ipynb")
               if ".ipynb_checkpoints" not in path.parts}
    orphans = sorted(str(path.relative_to(ROOT)) for path in on_disk - listed)
    assert not orphans, f"notebooks in chapters/ missing from _toc.yml: {orphans}"


def test_no_entry_is_listed_twice():
    entries = toc_entries()
    assert len(entries) == len(set(entries))


def test_resolve_entry_finds_suffixes_and_reports_missing(tmp_path):
    (tmp_path / "a.ipynb").write_text("{}")
    (tmp_path / "b.md").write_text("# b")
    assert resolve_entry("a", tmp_path) == tmp_path / "a.ipynb"
    assert resolve_entry("b.md", tmp_path) == tmp_path / "b.md"
    assert resolve_entry("c", tmp_path) is None
    assert resolve_entry("c.md", tmp_path) is None
