"""dvc.yaml as the report and the tests read it: stages by the names DVC gives them, with a
``foreach`` stage expanded into ``name@item`` stages (``${item}`` substituted), and on request
``${key}`` templates resolved from a params.yaml, as DVC resolves them (e.g. the `ask` stage's
``${ask.reference}`` dep)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from ruamel.yaml import YAML

TEMPLATE = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def read_dvc_yaml(path: str | Path = "dvc.yaml", params: str | Path | None = None) -> dict:
    """The file; with ``params`` (a params.yaml), its ``${key}`` templates resolved from it as DVC
    resolves them (``${item}`` of a ``foreach`` stage is left to :func:`expanded_stages`). Without:
    a stage that reads dvc.yaml (the report) does not read params.yaml, which it may not declare."""
    doc = YAML(typ="safe", pure=True).load(Path(path).read_text(encoding="utf-8")) or {}
    if params is not None:
        doc = resolve(doc, YAML(typ="safe", pure=True).load(Path(params).read_text(encoding="utf-8")) or {})
    return doc


def _lookup(params: dict, dotted: str):
    node = params
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, (str, int, float)) and not isinstance(node, bool) else None


def resolve(node, params: dict):
    """Every ``${key}`` in the strings of ``node`` whose key names a scalar of ``params``."""
    if isinstance(node, dict):
        return {k: resolve(v, params) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, params) for v in node]
    if isinstance(node, str):
        return TEMPLATE.sub(lambda m: str(v) if (v := _lookup(params, m.group(1))) is not None else m.group(0), node)
    return node


def expanded_stages(dvc_yaml: dict) -> dict[str, dict]:
    """{stage name: definition}; ``foreach: [a, b]`` + ``do`` becomes ``name@a``, ``name@b``."""
    out = {}
    for name, spec in (dvc_yaml.get("stages") or {}).items():
        if "foreach" not in spec:
            out[name] = spec
            continue
        template = json.dumps(spec["do"])
        for item in spec["foreach"]:
            out[f"{name}@{item}"] = json.loads(template.replace("${item}", str(item)))
    return out
