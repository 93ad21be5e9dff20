"""The shape of the code: layers that only import downwards, no import cycles, thin stage
scripts, a torch-free study layout, and dvc.yaml deps that follow the imports."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from askshift.cli import deps

ROOT = Path(__file__).resolve().parents[1]

# Lower layers never import higher ones; packages of one layer never import each other.
LAYERS = {"io": 0, "methods": 1, "data": 2, "nn": 2, "study": 3, "report": 4, "cli": 5}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def import_graph() -> dict[str, set[str]]:
    """{askshift module: askshift modules it imports (any import statement, also in functions)}."""
    graph = {}
    for f in sorted((ROOT / "askshift").rglob("*.py")):
        rel = f.relative_to(ROOT).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        names = deps._imports(ast.parse(f.read_text()), module, f.name == "__init__.py")
        graph[module] = {n for n in names if n.startswith("askshift.") and deps._module_file(ROOT, n)}
    return graph


def test_every_package_has_a_layer():
    top = {p.name for p in (ROOT / "askshift").iterdir() if p.is_dir() and p.name != "__pycache__"}
    top |= {p.stem for p in (ROOT / "askshift").glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert top == set(LAYERS), "add the new package to LAYERS (and to docs/architecture.md)"


def test_imports_only_point_down():
    upward = []
    for module, imported in import_graph().items():
        src = package_of(module)
        if src not in LAYERS:
            continue
        for target in imported:
            dst = package_of(target)
            if dst == src or dst not in LAYERS:
                continue
            if LAYERS[dst] >= LAYERS[src]:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(m, path):
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                cycles.append(" -> ".join(path[path.index(n):] + [n]))
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_the_layout_and_the_params_stage_import_no_torch():
    code = ("import sys, askshift.study.layout, askshift.study.params, askshift.study.config; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("script", sorted((ROOT / "stages").glob("[!_]*.py")), ids=lambda p: p.stem)
def test_stage_scripts_are_thin(script):
    """About 30 lines, no closures or classes, one convention: run_stage(name, main)."""
    text = script.read_text()
    tree = ast.parse(text)
    assert len(text.splitlines()) <= 30
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.Lambda))]
    for fn in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
        assert not [n for n in ast.walk(fn) if isinstance(n, ast.FunctionDef) and n is not fn], fn.name
    assert f'run_stage("{script.stem}", main' in text


def test_stage_scripts_import_their_library_after_claiming_cores():
    """A stage claims its cores in run_stage, so the top level of its script imports nothing
    heavy: seconds of CPU for torch or pandas would be taken from the stage holding the cores."""
    scripts = sorted(p.stem for p in (ROOT / "stages").glob("[!_]*.py"))
    code = (f"import sys; [__import__('stages.' + s) for s in {scripts!r}]; "
            "print(sorted(m for m in ('numpy', 'pandas', 'torch', 'timm', 'sklearn', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_dvc_yaml_lists_exactly_the_code_each_stage_executes():
    dvc_yaml = YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())
    problems = deps.check(dvc_yaml, ROOT)
    assert problems == {}, f"run `python -m askshift deps --write`: {problems}"


def test_deps_check_catches_drift(tmp_path):
    """A listed file the stage does not run, a file it runs but does not list, a params list
    that is not the declared one: each is reported."""
    dvc_yaml = YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())
    th = dvc_yaml["stages"]["theory"]
    th["deps"].remove("askshift/methods/theory.py")
    th["deps"].append("askshift/methods/split.py")
    th["params"] = ["seed"]
    p = deps.check(dvc_yaml, ROOT)["theory"]
    assert p["missing"] == ["askshift/methods/theory.py"] and p["extra"] == ["askshift/methods/split.py"]
    assert "theory" in p["params"][0]


def test_deps_follow_imports_inside_functions_and_relative_ones(tmp_path):
    (tmp_path / "askshift" / "a").mkdir(parents=True)
    (tmp_path / "askshift" / "__init__.py").write_text("")
    (tmp_path / "askshift" / "a" / "__init__.py").write_text("")
    (tmp_path / "askshift" / "a" / "x.py").write_text("def f():\n    from .y import g\n")
    (tmp_path / "askshift" / "a" / "y.py").write_text("import askshift.a.z\n")
    (tmp_path / "askshift" / "a" / "z.py").write_text("Z = 1\n")
    files = deps.import_closure({"stages.s": "from askshift.a import x\n"}, tmp_path)
    assert {f.name for f in files} == {"x.py", "y.py", "z.py"}  # empty __init__ files left out


def test_notebook_templates_use_only_existing_helpers():
    """Every `F.<name>` / `notebook.<name>` a template calls exists (a removed helper once
    turned two report parts into error boxes while every test passed)."""
    import re

    from askshift.report import figures, notebook

    used = {}
    for name, code in deps.notebook_code(ROOT / "reports" / "templates").items():
        for mod, attr in re.findall(r"\b(F|notebook)\.([A-Za-z_]\w*)", code):
            used.setdefault((mod, attr), name)
    missing = [f"{mod}.{attr} in {nb}" for (mod, attr), nb in used.items()
               if not hasattr(figures if mod == "F" else notebook, attr)]
    assert used and missing == []
