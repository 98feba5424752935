"""The Python package's imports point one way, top to bottom (the README's module map).

The import graph of `rawcore` is built from the source with `ast` (every import, at module
level or inside a function, under `TYPE_CHECKING` or not) and held against the rule below:
a module imports only from its own layer or a lower one, inside a package only from the rooms
listed before it, never in a cycle, and never a private name of another module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "rawcore"

#: Layers, bottom first. A module may import its own layer and the ones below. `storage` (the
#: org-scoped storage layout) sits beside `source`. `jobs` sits beside `pipeline`: its store
#: needs nothing above `storage`, but a job runs media operations (a conversion), so the room
#: that submits and runs them cannot sit below `media`. `batch` (many recordings on a local
#: pool or Ray) sits there too: it is handed the command to run by the CLI. The service joins
#: `api` and `cli` at the top.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("rawcore._core", "rawcore.atomic", "rawcore.errors", "rawcore.progress", "rawcore.threads"),
    ("rawcore.source", "rawcore.storage"),
    ("rawcore.recording",),
    ("rawcore.media",),
    ("rawcore.pipeline", "rawcore.jobs", "rawcore.batch"),
    ("rawcore.api", "rawcore.cli", "rawcore.service"),
    ("rawcore", "rawcore.__main__"),
)

#: Inside a package, the order of its rooms, bottom first: a room imports only rooms before it.
#: A tuple groups rooms that are peers (they must not import each other).
ROOMS: Mapping[str, tuple[str | tuple[str, ...], ...]] = {
    "rawcore.source": (
        ("cache", "track_folder"),
        ("s3", "members"),
        ("containers", "captures"),
        "archive",
    ),
    "rawcore.storage": ("keys", "backends", "identity"),
    "rawcore.recording": (("metadata", "reading"), "model", "columns", "build", "timeline"),
    "rawcore.media": (
        ("files", "formats"),
        "manifest",
        "outputs",
        ("audio", "video"),
        "mux",
        "track",
        "mix",
        "convert",
    ),
    "rawcore.media.convert": ("probe", "native", "remux", "editor", "run"),
    "rawcore.jobs": ("store", "pool", ("conversion", "on_ray")),
    "rawcore.media.mix": ("types", ("decode", "encode"), "engine"),
    "rawcore.pipeline": ("qa", "process", "scene", "compose", "post"),
    "rawcore.pipeline.compose": (("edits", "timemap"), ("feeds", "audio"), "render"),
    "rawcore.pipeline.scene": ("model", "events", ("layout", "speech"), "otio", "build"),
    "rawcore.batch": (("plan", "deliver"), "task", ("pool", "on_ray")),
    "rawcore.cli": ("listing", "commands", "parser", "dispatch", "batch", "main"),
    "rawcore.service": (
        "config",
        "store",
        ("signing", "sources"),
        "ingest",
        "models",
        "deps",
        "jobs_view",
        "routes",
        "app",
    ),
    "rawcore.service.routes": (("recordings", "tracks", "jobs"), "files", "page"),
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    names: tuple[str, ...] = ()


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def collect(root: Path) -> tuple[set[str], list[Import]]:
    """Every module of the package under `root`, and every import of a `rawcore` module."""
    files = sorted(root.rglob("*.py"))
    modules = {module_name(f, root) for f in files} | {"rawcore._core"}
    imports: list[Import] = []
    for f in files:
        me = module_name(f, root)
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "rawcore":
                        imports.append(Import(me, alias.name, node.lineno))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] != "rawcore":
                    continue
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    if sub in modules:  # `from rawcore.x import module`
                        imports.append(Import(me, sub, node.lineno))
                    else:
                        imports.append(Import(me, node.module, node.lineno, (alias.name,)))
    return modules, imports


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            fits = module == prefix or (prefix != "rawcore" and module.startswith(prefix + "."))
            if fits and len(prefix) > best:
                best, rank = len(prefix), i
    if rank < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and the README map")
    return rank


def room_rank(module: str) -> tuple[str, int] | None:
    """The package that orders `module`'s room, and the room's rank in it."""
    for package, rooms in sorted(ROOMS.items(), key=lambda kv: -len(kv[0])):
        if not module.startswith(package + "."):
            continue
        room = module[len(package) + 1 :].split(".")[0]
        for rank, entry in enumerate(rooms):
            if room == entry or (isinstance(entry, tuple) and room in entry):
                return package, rank
        raise AssertionError(f"{module} is not a room of {package}: add it to ROOMS")
    return None


def violations(modules: set[str], imports: Iterable[Import]) -> list[str]:
    """Every import against the rule, one line each."""
    found: list[str] = []
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        src, dst = imp.importer, imp.imported
        if dst == src:
            continue
        edges.setdefault(src, set()).add(dst)
        where = f"{src} (line {imp.line}) imports {dst}"
        if layer_of(dst) > layer_of(src):
            found.append(f"{where}: a higher layer")
        mine, theirs = room_rank(src), room_rank(dst)
        if mine and theirs and mine[0] == theirs[0] and theirs[1] >= mine[1]:
            found.append(f"{where}: a room not below it in {mine[0]}")
        private = [n for n in imp.names if n.startswith("_")]
        if private:
            found.append(f"{where}: private name {', '.join(private)}")
    # Cycles, over every edge (upward or not), by depth-first search.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append("cycle: " + " -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_the_package_imports_point_one_way() -> None:
    modules, imports = collect(PACKAGE)
    assert len(modules) > 30 and len(imports) > 100  # the walk saw the real package
    assert violations(modules, imports) == []


def _imp(src: str, dst: str, *names: str) -> Import:
    return Import(src, dst, 1, names)


_MODULES = {
    "rawcore",
    "rawcore.errors",
    "rawcore.source.archive",
    "rawcore.source.cache",
    "rawcore.recording.model",
    "rawcore.recording.timeline",
    "rawcore.media.outputs",
    "rawcore.media.audio",
    "rawcore.media.video",
    "rawcore.pipeline.process",
    "rawcore.cli.main",
}


@pytest.mark.parametrize(
    ("case", "imports", "expected"),
    [
        ("downward imports pass", [_imp("rawcore.media.audio", "rawcore.recording.model")], []),
        (
            "the model importing an extractor (a lazy back-import) is upward",
            [_imp("rawcore.recording.model", "rawcore.media.audio", "extract_audio")],
            ["a higher layer"],
        ),
        (
            "the shared engine importing a writer built on it is upward inside media",
            [_imp("rawcore.media.outputs", "rawcore.media.audio")],
            ["a room not below it"],
        ),
        (
            "two peers importing each other",
            [
                _imp("rawcore.media.audio", "rawcore.media.video"),
                _imp("rawcore.media.video", "rawcore.media.audio"),
            ],
            ["a room not below it", "a room not below it", "cycle"],
        ),
        (
            "a private name crossing modules",
            [_imp("rawcore.media.video", "rawcore.media.outputs", "_placed")],
            ["private name _placed"],
        ),
        (
            "a cycle between two rooms of a lower layer",
            [
                _imp("rawcore.source.archive", "rawcore.source.cache"),
                _imp("rawcore.source.cache", "rawcore.source.archive"),
            ],
            ["a room not below it", "cycle"],
        ),
    ],
)
def test_the_rule_catches_what_it_states(
    case: str, imports: list[Import], expected: list[str]
) -> None:
    found = violations(_MODULES, imports)
    assert len(found) == len(expected), (case, found)
    unmatched = list(found)
    for want in expected:
        line = next((v for v in unmatched if want in v), None)
        assert line is not None, (case, want, found)
        unmatched.remove(line)


def test_a_back_import_added_to_the_real_tree_fails(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "rawcore"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    model = copy / "recording" / "model.py"
    model.write_text(
        model.read_text()
        + "\n\ndef _later() -> None:\n    from rawcore.media.audio import extract_audio  # noqa\n"
    )
    found = violations(*collect(copy))
    assert any("rawcore.recording.model" in v and "a higher layer" in v for v in found), found
    assert any(v.startswith("cycle:") for v in found), found
