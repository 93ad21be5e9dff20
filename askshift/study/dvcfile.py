"""dvc.yaml as the report and the tests read it: stages by the names DVC gives them, with a
``foreach`` stage expanded into ``name@item`` stages (``${item}`` substituted)."""
from __future__ import annotations

import json
from pathlib import Path

from ruamel.yaml import YAML


def read_dvc_yaml(path: str | Path = "dvc.yaml") -> dict:
    return YAML(typ="safe", pure=True).load(Path(path).read_text(encoding="utf-8")) or {}


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
