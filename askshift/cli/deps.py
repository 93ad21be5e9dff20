"""``python -m askshift deps``: keep dvc.yaml's code deps equal to what each stage imports, and
its ``params:`` lists equal to :data:`askshift.study.declared.STAGE_PARAMS`.

DVC re-runs a stage when one of its deps changes, so a stage must list every project file its
code executes, and nothing else (an extra file re-runs it for nothing). :func:`code_deps` follows
the imports of ``stages/<stage>.py`` (for a report part's stage ``report_<part>``: of
``stages/report_part.py`` and of the part's notebook template)
through the ``askshift`` package by static analysis of the source, every ``import`` statement
included, also those inside functions. Empty ``__init__.py`` files are left out: they cannot
change a result.

    python -m askshift deps            # list what is missing or extra per stage; exit 1 if any
    python -m askshift deps --write    # rewrite the code deps and params lists (comments kept)
"""
from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

from ruamel.yaml import YAML

from askshift.cli import register
from askshift.study.config import ALL
from askshift.study.declared import STAGE_PARAMS

PACKAGE = "askshift"
CODE_ROOTS = ("askshift/", "stages/")
TEMPLATES = Path("reports/templates")


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names of the modules an AST imports (``from a import b`` yields ``a`` and ``a.b``)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                parent = parts if is_package else parts[:-1]
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_closure(sources: dict[str, str], root: Path = Path(".")) -> set[Path]:
    """Project files executed when the given sources run: ``{module name: source text}``
    (a stage script, notebook code). Follows imports inside the ``askshift`` package."""
    seen: set[Path] = set()
    todo = [(name, text, False) for name, text in sources.items()]
    while todo:
        module, text, is_package = todo.pop()
        for name in _imports(ast.parse(text), module, is_package):
            for mod in (*_parents(name), name):
                if mod.split(".")[0] != PACKAGE:
                    continue
                f = _module_file(root, mod)
                if f is None or f in seen:
                    continue
                seen.add(f)
                todo.append((mod, f.read_text(encoding="utf-8"), f.name == "__init__.py"))
    return {f for f in seen if f.stat().st_size > 0}


def notebook_code(folder: Path, pattern: str = "*.ipynb") -> dict[str, str]:
    """The code cells of the notebook templates in ``folder`` (IPython magics dropped)."""
    out = {}
    for nb in sorted(folder.glob(pattern)):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        out[f"notebook_{nb.stem}"] = "\n".join(l for l in code.splitlines() if not l.lstrip().startswith(("%", "!")))
    return out


def part_of(stage: str) -> str | None:
    """The report part a stage renders (``report_<part>``), else None."""
    part = stage.removeprefix("report_")
    return part if part != stage else None


def code_deps(stage: str, root: Path = Path(".")) -> list[str]:
    """The project files ``stage`` executes: its script and everything it imports (a report
    part's stage: ``stages/report_part.py`` and its part's notebook template)."""
    part = part_of(stage)
    script = root / "stages" / f"{'report_part' if part else stage}.py"
    sources = {f"stages.{script.stem}": script.read_text(encoding="utf-8")}
    if part:
        sources.update(notebook_code(root / TEMPLATES, f"{part}.ipynb"))
    files = import_closure(sources, root) | {script}
    package = root / "stages" / "__init__.py"  # runs before every stage script
    if package.is_file() and package.stat().st_size > 0:
        files.add(package)
    return sorted(f.relative_to(root).as_posix() for f in files)


def is_code(dep: str) -> bool:
    return dep.endswith(".py") and dep.startswith(CODE_ROOTS)


def body(spec: dict) -> dict:
    """A stage's definition (the ``do`` block of a ``foreach`` stage)."""
    return spec["do"] if "foreach" in spec else spec


def params_entry(stage: str) -> list:
    """The ``params:`` list dvc.yaml should have for ``stage``."""
    keys = STAGE_PARAMS.get(stage, ())
    return [{"params.yaml": None}] if ALL in keys else list(keys)


def _listed_params(spec: dict) -> list:
    return [{k: None for k in e} if isinstance(e, dict) else e for e in (spec.get("params") or [])]


def check(dvc_yaml: dict, root: Path = Path(".")) -> dict[str, dict[str, list[str]]]:
    """Per stage: code files it executes but does not list (``missing``), code files it lists
    but does not execute (``extra``), and a ``params`` list that differs from the declared
    table. Empty when dvc.yaml is in step."""
    problems = {}
    stages = dvc_yaml.get("stages") or {}
    for stage in sorted(set(stages) ^ set(STAGE_PARAMS)):
        problems[stage] = {"missing": [], "extra": [], "params": [
            "in dvc.yaml but not in askshift/study/declared.py" if stage in stages
            else "in askshift/study/declared.py but not in dvc.yaml"]}
    for stage, spec in stages.items():
        spec = body(spec)
        listed = {d for d in (spec.get("deps") or []) if isinstance(d, str) and is_code(d)}
        want = set(code_deps(stage, root))
        bad_params = _listed_params(spec) != params_entry(stage)
        if listed != want or bad_params:
            problems.setdefault(stage, {"missing": [], "extra": [], "params": []})
            problems[stage]["missing"] += sorted(want - listed)
            problems[stage]["extra"] += sorted(listed - want)
            if bad_params:
                problems[stage]["params"].append(f"dvc.yaml lists {_listed_params(spec)}, the table declares "
                                                 f"{params_entry(stage)}")
    return problems


def write(path: Path = Path("dvc.yaml"), root: Path = Path(".")) -> None:
    """Replace each stage's code deps by :func:`code_deps` (other deps and comments kept; the
    code deps go after the data deps) and its ``params:`` list by the declared table."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never wrap a long path onto the next line
    yaml.indent(mapping=2, sequence=4, offset=2)
    doc = yaml.load(path.read_text(encoding="utf-8"))
    for stage, spec in doc["stages"].items():
        spec = body(spec)
        deps = spec.get("deps")
        keep = [d for d in (deps or []) if not (isinstance(d, str) and is_code(d))]
        new = keep + code_deps(stage, root)
        if deps is None:
            spec["deps"] = new
        else:
            deps[:] = new
        entry = params_entry(stage)
        if not entry:
            spec.pop("params", None)
        elif _listed_params(spec) != entry:
            spec["params"] = entry
    with path.open("w", encoding="utf-8") as f:
        yaml.dump(doc, f)


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dvc-yaml", default="dvc.yaml")
    p.add_argument("--write", action="store_true", help="rewrite the code deps of every stage in dvc.yaml")


@register("deps", help="check (or --write) that dvc.yaml lists exactly the code each stage executes",
          configure=_configure)
def run_deps(args) -> int:
    path = Path(args.dvc_yaml)
    if args.write:
        write(path)
    problems = check(YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8")))
    for stage, p in problems.items():
        for kind in ("missing", "extra", "params"):
            for f in p[kind]:
                print(f"{stage}: {kind} {f}")
    if not problems:
        print(f"{path}: every stage lists exactly the code it executes")
    return 1 if problems else 0
