"""Each stage reads only the params it declares, validated before any stage runs.

The `params` stage runs first: it validates the whole params.yaml against
:mod:`askshift.study.params` (every section, every cross-key rule) and writes, for every stage,
the validated values of the keys that stage declares (:mod:`askshift.study.declared`, copied
into dvc.yaml's ``params:`` lists) to ``results/params/<stage>.json``
(:func:`write_stage_params`). Every other stage depends on its own file and reads its config
from it (:func:`stage_config`). So

- a bad value anywhere stops the pipeline in the `params` stage, before DVC deletes any other
  stage's outputs;
- a stage re-runs only when the validated values of its declared keys change;
- a stage cannot read a key it does not declare: :class:`Section` raises, naming the stage and
  the key (DVC would not re-run it when that key changes).
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from askshift.io import write_json

ALL = "*"  # the whole params file (`- params.yaml:` in dvc.yaml)
STAGE_PARAMS = Path("results/params")
SAME_ARCH = "same"  # baseline.model.arch: the from-scratch models take model.arch and model.kwargs


class ParamsError(ValueError):
    """A params.yaml problem; the message names the file, the key and what is valid."""


def stage_params_file(stage: str) -> Path:
    return STAGE_PARAMS / f"{stage}.json"


def select(params: dict, declared: set[str], prefix: str = "") -> dict:
    """The part of ``params`` under the declared dotted keys, nested as in params.yaml."""
    if ALL in declared:
        return params
    out = {}
    for key, value in params.items():
        dotted = prefix + key
        if dotted in declared:
            out[key] = value
        elif isinstance(value, dict) and any(d.startswith(dotted + ".") for d in declared):
            out[key] = select(value, declared, dotted + ".")
    return out


def write_stage_params(params: dict, table: dict[str, tuple[str, ...]], out: Path = STAGE_PARAMS) -> None:
    """One JSON file per stage with the validated values of the keys it declares."""
    for stage, keys in table.items():
        write_json(out / f"{stage}.json", select(params, set(keys)))


class Section(Mapping):
    """A validated params section: ``s.key`` or ``s["key"]``; nested sections are Sections too.
    Reading a key the stage did not declare raises :class:`ParamsError`."""

    def __init__(self, values: dict, prefix: str = "", stage: str = ""):
        self._values, self._prefix, self._stage = values, prefix, stage

    def __getitem__(self, key: str) -> Any:
        dotted = f"{self._prefix}{key}"
        if key not in self._values:
            raise ParamsError(f"stage {self._stage!r} reads params key {dotted!r} but does not declare it: "
                              "DVC would not re-run it when that key changes. Add it to the stage in "
                              "askshift/study/declared.py, then run `python -m askshift deps --write`")
        v = self._values[key]
        return Section(v, dotted + ".", self._stage) if isinstance(v, dict) else v

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        return self[key]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self._values))

    def __repr__(self) -> str:
        return f"Section({self._prefix.rstrip('.') or self._stage}: {self._values!r})"


def scratch_model(params: Mapping) -> tuple[str, dict]:
    """``(arch, kwargs)`` of the models trained from scratch (the baselines, the analyses'
    scratch arms): ``baseline.model``, or ``model`` where ``baseline.model.arch`` is ``same``.
    ``params``: the whole params dict or a stage's :class:`Section` declaring both."""
    own = params["baseline"]["model"]
    m = params["model"] if own["arch"] == SAME_ARCH else own
    kwargs = m["kwargs"]
    return m["arch"], kwargs.to_dict() if isinstance(kwargs, Section) else dict(kwargs)


def stage_config(stage: str) -> Section:
    """The validated params ``stage`` declares, as the `params` stage wrote them."""
    path = stage_params_file(stage)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise ParamsError(f"{path} is missing: run `dvc repro {stage}` (the `params` stage validates "
                          "params.yaml and writes it), or `python -m stages.params` first") from None
    return Section(values, stage=stage)
