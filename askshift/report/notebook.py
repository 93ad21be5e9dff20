"""What a report notebook calls in its first cell: its part's params and inputs."""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from askshift.data.worlds import WORLDS, World
from askshift.report.claims import Rules
from askshift.report.inputs import Inputs
from askshift.study.config import Section, select
from askshift.study.declared import RENDER, STAGE_PARAMS, part_stage
from askshift.study.params import ParamsError, load_params


@dataclass
class Context:
    params: Section      # the part's declared params only: reading another key raises
    inputs: Inputs

    @property
    def rules(self) -> Rules:
        return Rules.from_params(self.params["report"])

    @property
    def world(self) -> World:
        """The world the study ran in (parts that declare ``world``)."""
        return WORLDS[self.params["world"]]

    @property
    def tolerance(self) -> float:
        return self.rules.tolerance

    def has(self, path: str) -> bool:
        return self.inputs.has(path)

    def path(self, path: str) -> Path:
        return self.inputs.path(path)

    def missing(self, *paths: str) -> dict[str, str]:
        """{path: why it is absent} for the paths that are not available."""
        return {p: self.inputs.why_absent(p) for p in paths if not self.inputs.has(p)}


def _shown(values: dict, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted key, value) of the declared params, the rendering ones left out."""
    out = []
    for k, v in values.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _shown(v, key + ".")
        elif key not in RENDER:
            out.append((key, v))
    return out


def setup(part: str, params: dict | None = None, inputs: list | None = None, quiet: bool = False) -> Context:
    """The notebook's context: the params its stage declares (``report_<part>`` in
    askshift/study/declared.py) and the stage's deps as inputs.

    The stage injects both; run by hand (None), they are read from params.yaml (validated) and
    dvc.yaml. Reading a param the part does not declare raises, naming the key: DVC would not
    re-render the part when it changes.
    """
    stage = part_stage(part)
    if stage not in STAGE_PARAMS:
        raise ParamsError(f"notebook parameter part = {part!r}: not a report part; choose one of "
                          f"{', '.join(k[len('report_'):] for k in STAGE_PARAMS if k.startswith('report_'))}")
    if params is None:
        params = select(load_params("params.yaml", machine=False), set(STAGE_PARAMS[stage]))
    elif not isinstance(params, dict):
        raise ParamsError(f"notebook parameter params = {params!r}: expected a mapping")
    dvc_yaml = Path("dvc.yaml")
    if inputs is None:
        inp = Inputs.from_dvc_yaml(stage=stage)
    else:
        if not isinstance(inputs, (list, tuple)) or not all(isinstance(p, str) for p in inputs):
            raise ParamsError(f"notebook parameter inputs = {inputs!r}: expected a list of paths")
        producers = Inputs.from_dvc_yaml(stage=stage).producers if dvc_yaml.exists() else None
        inp = Inputs(list(inputs), Path("."), producers, stage)
    ctx = Context(Section(params, stage=stage), inp)
    if not quiet:
        from IPython.display import HTML, display

        shown = ", ".join(f"<code>{html.escape(k)}</code> = {html.escape(str(v))}" for k, v in _shown(params))
        display(HTML(
            f'<div class="askshift-note">Rendered by stage <code>{stage}</code> from the '
            f"{len(inp.deps)} deps it declares in dvc.yaml"
            f"{f' and the params it reads: {shown}' if shown else ' (it reads no params beyond how to render)'}"
            ".</div>"))
    return ctx
