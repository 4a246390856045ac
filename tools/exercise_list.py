"""A Sphinx extension: the `exercise-list` directive lists every exercise in the book, built from sphinx-exercise.

The list is made when pages are written, from the exercises sphinx-exercise recorded while reading every page, so
it cannot go stale: a new, renamed or removed exercise changes the list on the next build. Each entry links to its
exercise and shows its number and title as the chapter shows them, then what the exercise asks of the reader: its
kind, difficulty, time and hardware, from the meta line that opens every exercise's body (`META`), e.g.
`*Code · ★★☆ · 20 min · laptop CPU*`. Use it in a page of the book:

    ```{exercise-list}
    ```
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util.docutils import SphinxDirective

_PAGES_ATTR = "exercise_list_pages"  # the set of docnames that hold the directive
KINDS = ("Pen and paper", "Code", "Experiment")
# The line that opens every exercise's body: kind · difficulty (one to three stars of three) · time · hardware.
META = re.compile(r"(?P<kind>" + "|".join(KINDS) + r") · (?P<stars>★☆☆|★★☆|★★★) · "
                  r"(?P<time>\d+(?:–\d+)? min) · (?P<hardware>[^·*\n]+)")


class exercise_list(nodes.General, nodes.Element):
    """Placeholder for the list, replaced once every page has been read."""


class ExerciseListDirective(SphinxDirective):
    """`exercise-list`: the list of every exercise in the book, by chapter, in reading order."""

    has_content = False
    required_arguments = 0
    optional_arguments = 0

    def run(self) -> list[nodes.Node]:
        """Record the page and return the placeholder that `resolve_exercise_lists` fills in."""
        pages = getattr(self.env, _PAGES_ATTR, set())
        pages.add(self.env.docname)
        setattr(self.env, _PAGES_ATTR, pages)
        return [exercise_list("")]


def _needs_mathjax(app: Sphinx, doctree: nodes.document) -> None:
    """Exercise titles may hold mathematics: have Sphinx load MathJax on a page that lists them.

    (Runs at doctree-read, after the math domain has recorded that the page itself holds no formula.)
    """
    if any(doctree.findall(exercise_list)):
        app.env.get_domain("math").data["has_equations"][app.env.docname] = True


def reading_order(env: BuildEnvironment, root: str) -> list[str]:
    """Return the docnames reachable from `root` through the toctrees, depth first, in the book's reading order."""
    if not isinstance(root, str) or not root:
        raise ValueError(f"root must be a non-empty docname, got {root!r}")
    order: list[str] = []
    stack = [root]
    while stack:
        docname = stack.pop()
        if docname in order:
            continue
        order.append(docname)
        stack.extend(reversed(env.toctree_includes.get(docname, [])))
    return order


def _title_of(node: nodes.Element) -> list[nodes.Node]:
    """Return the exercise's own title (its subtitle) as inline nodes: math kept, cross-references as text."""
    for subtitle in node.findall(lambda n: type(n).__name__ == "exercise_subtitle"):
        parts: list[nodes.Node] = []
        for child in subtitle.children:
            if isinstance(child, (nodes.math, nodes.Text)):
                parts.append(child.deepcopy())
            else:
                parts.append(nodes.Text(child.astext()))
        return parts
    return []


def _meta_of(node: nodes.Element) -> str:
    """Return the exercise's meta line (kind · difficulty · time · hardware), or "" when its body has none."""
    for paragraph in node.findall(nodes.paragraph):
        if any("title" in type(parent).__name__ for parent in _ancestors(paragraph)):
            continue
        match = META.fullmatch(paragraph.astext().strip())
        return match.group(0) if match else ""
    return ""


def _ancestors(node: nodes.Node) -> list[nodes.Node]:
    """The node's parents, nearest first."""
    found = []
    while node.parent is not None:
        node = node.parent
        found.append(node)
    return found


def exercises_by_page(env: BuildEnvironment) -> list[tuple[str, list[dict[str, Any]]]]:
    """Return [(docname, [exercise, ...]), ...] in reading order; each exercise is a dict: label, number, title,
    meta (its kind · difficulty · time · hardware line, or "")."""
    registry = getattr(env, "sphinx_exercise_registry", {})
    order = getattr(env, "sphinx_exercise_node_order", {})
    found: list[tuple[str, list[dict[str, Any]]]] = []
    for docname in reading_order(env, env.config.root_doc):
        labels = [entry["label"] for entry in order.get(docname, []) if entry.get("type") == "exercise"]
        exercises = []
        for label in labels:
            record = registry.get(label)
            if record is None or record["docname"] != docname or record["node"].get("hidden"):
                continue
            number = env.toc_fignumbers.get(docname, {}).get("exercise", {}).get(label)
            exercises.append({"label": label, "number": ".".join(map(str, number)) if number else "",
                              "title": _title_of(record["node"]), "meta": _meta_of(record["node"])})
        if exercises:
            found.append((docname, exercises))
    return found


def _entry(app: Sphinx, fromdocname: str, docname: str, exercise: dict[str, Any]) -> nodes.list_item:
    """One line of the list: a link to the exercise, 'Exercise 3.1: its title'."""
    uri = app.builder.get_relative_uri(fromdocname, docname) + "#" + exercise["label"]
    reference = nodes.reference("", "", internal=True, refuri=uri)
    name = f"Exercise {exercise['number']}" if exercise["number"] else "Exercise"
    reference += nodes.Text(name + (": " if exercise["title"] else ""))
    reference.extend(exercise["title"])
    paragraph = nodes.paragraph("", "", reference)
    if exercise["meta"]:
        paragraph += [nodes.Text(" — "), nodes.emphasis("", exercise["meta"], classes=["exercise-meta"])]
    return nodes.list_item("", paragraph)


def resolve_exercise_lists(app: Sphinx, doctree: nodes.document, fromdocname: str) -> None:
    """Replace each placeholder with the list: one item per chapter, its exercises nested beneath."""
    placeholders = list(doctree.findall(exercise_list))
    if not placeholders:
        return
    env = app.env
    chapters = nodes.bullet_list(classes=["exercise-list"])
    for docname, exercises in exercises_by_page(env):
        uri = app.builder.get_relative_uri(fromdocname, docname)
        title = env.titles[docname].deepcopy() if docname in env.titles else nodes.Text(docname)
        heading = nodes.reference("", "", internal=True, refuri=uri)
        heading.extend(title.children if isinstance(title, nodes.Element) else [title])
        number = env.toc_secnumbers.get(docname, {}).get("")
        prefix = [nodes.Text(".".join(map(str, number)) + ". ")] if number else []
        items = nodes.bullet_list("", *(_entry(app, fromdocname, docname, ex) for ex in exercises))
        chapters += nodes.list_item("", nodes.paragraph("", "", *prefix, heading), items)
    for placeholder in placeholders:
        if len(chapters):
            placeholder.replace_self(chapters.deepcopy())
        else:
            placeholder.replace_self(nodes.paragraph("", "The book has no exercises yet."))


def _always_reread(app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str],
                   removed: set[str]) -> list[str]:
    """Have an incremental build rewrite the list pages too, since any page's exercises may have changed."""
    return sorted(getattr(env, _PAGES_ATTR, set()) - added - changed - removed)


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    """Forget a page that is about to be read again."""
    getattr(env, _PAGES_ATTR, set()).discard(docname)


def _merge(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment) -> None:
    """Combine what parallel readers recorded."""
    setattr(env, _PAGES_ATTR, getattr(env, _PAGES_ATTR, set()) | getattr(other, _PAGES_ATTR, set()))


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive and its placeholder node with Sphinx."""
    app.setup_extension("sphinx_exercise")
    app.add_node(exercise_list)
    app.add_directive("exercise-list", ExerciseListDirective)
    app.connect("doctree-read", _needs_mathjax)
    app.connect("doctree-resolved", resolve_exercise_lists)
    app.connect("env-get-outdated", _always_reread)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
