"""Data flows one way: a module imports only from its own layer or the layers below it
(docs/architecture.md, "Layers"). Read with ast (nothing imported); lazy imports inside
functions count the same as module-level ones."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "bgforge"

# the layer of each top-level module or package of bgforge, lowest first
LAYERS = (
    ("", "errors", "records", "rng", "choices", "ordering", "association", "params", "recipe", "progress",
     "chain", "recipe_params", "sample_meta"),
    ("io",),
    ("sources",),
    ("backends",),
    ("stages",),
    ("planners",),
    ("execution",),
    ("report", "eval", "data", "provenance"),
    ("finalize", "building", "dry_run", "api"),
    ("cli", "recipe_help", "__main__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}

# an import that goes up a layer on purpose, with why; each must still exist (the test says when it goes)
EXCEPTIONS = {
    # a test tree generator writes the patch labels PatchNet's trainer reads, in their one format
    ("bgforge.sources.synthetic_blobs", "bgforge.backends.patchnet"),
    # the package's face hands out the Python API (bgforge.build, ...) on first use: a lazy re-export
    ("bgforge", "bgforge.api"),
}


def _module(path: Path, pkg: Path = PKG) -> str:
    parts = ("bgforge",) + path.relative_to(pkg).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports(path: Path, pkg: Path = PKG):
    """(imported module, line) for every bgforge import in the file."""
    module = _module(path, pkg)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import x`: x is the module imported
            names = [f"{target}.{a.name}" if not node.module else target for a in node.names]
        else:
            continue
        for name in names:
            if name == "bgforge" or name.startswith("bgforge."):
                yield name, node.lineno


def violations(pkg: Path = PKG):
    found, used = [], set()
    for path in sorted(pkg.rglob("*.py")):
        module = _module(path, pkg)
        rank = RANK[_top(module)]
        for target, line in imports(path, pkg):
            top = _top(target)
            if top not in RANK:   # `from bgforge import __version__` and the like
                top = ""
            if RANK[top] <= rank:
                continue
            exempt = [e for e in EXCEPTIONS if module == e[0] and (target == e[1] or target.startswith(e[1] + "."))]
            if exempt:
                used.update(exempt)
                continue
            found.append(f"{path.relative_to(pkg.parent)}:{line} {module} (layer {rank}) imports {target} (layer {RANK[top]})")
    return found, used


def test_every_module_has_a_layer():
    tops = {_top(_module(p)) for p in PKG.rglob("*.py")}
    assert tops <= set(RANK), f"give these a layer in LAYERS and docs/architecture.md: {sorted(tops - set(RANK))}"


def test_no_upward_import():
    found, _ = violations()
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_exceptions_are_still_needed():
    _, used = violations()
    assert used == EXCEPTIONS, f"no longer imported, remove from EXCEPTIONS: {sorted(EXCEPTIONS - used)}"


def test_the_rule_catches_an_upward_import(tmp_path):
    """The checker itself: a stage that imports the executor (lazily or not) is reported, a planner
    that imports a stage is not."""
    fake = tmp_path / "bgforge"
    for folder in ("stages", "planners"):
        (fake / folder).mkdir(parents=True)
    (fake / "stages" / "x.py").write_text("def f():\n    from ..execution.context import RunConfig\n")
    (fake / "planners" / "y.py").write_text("from ..stages import x\nfrom bgforge.chain import Chain\n")
    found, _ = violations(fake)
    assert len(found) == 1 and "bgforge.stages.x (layer 4) imports bgforge.execution.context (layer 6)" in found[0]
