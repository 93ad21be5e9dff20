"""What a report notebook calls in its first cell: validate the parameters, open the inputs."""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from askshift.study.params import ParamsError, load_params
from askshift.report.claims import Rules
from askshift.report.inputs import Inputs


@dataclass
class Context:
    params: dict
    inputs: Inputs
    rules: Rules

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


def setup(params_file: str = "params.yaml", inputs: list | None = None, report: dict | None = None,
          quiet: bool = False) -> Context:
    """Validate params.yaml and the injected parameters; return the notebook's context.

    params.yaml is validated in full (unknown keys, types, choices). The stage injects the
    `report` section it read; if it differs from the file's (e.g. a notebook run by hand
    against an edited params.yaml) the notebook stops here, naming the key. `inputs` is the
    list of the report stage's deps (None: read them from dvc.yaml, for interactive use).
    """
    params = load_params(params_file, machine=False)  # the params stage ran those checks
    cfg = params["report"]
    if report is not None:
        if not isinstance(report, dict):
            raise ParamsError(f"notebook parameter report = {report!r}: expected a mapping")
        for key in sorted(set(report) | set(cfg)):
            if report.get(key) != cfg.get(key):
                raise ParamsError(f"notebook parameter report[{key!r}] = {report.get(key)!r} differs "
                                  f"from {params_file}: report.{key} = {cfg.get(key)!r}")
    dvc_yaml = Path("dvc.yaml")
    if inputs is None:
        inp = Inputs.from_dvc_yaml()
    else:
        if not isinstance(inputs, (list, tuple)) or not all(isinstance(p, str) for p in inputs):
            raise ParamsError(f"notebook parameter inputs = {inputs!r}: expected a list of paths")
        inp = Inputs(list(inputs), Path("."), Inputs.from_dvc_yaml().producers if dvc_yaml.exists() else None)
    ctx = Context(params, inp, Rules.from_params(cfg))
    if not quiet:
        from IPython.display import HTML, display

        r = params["robustness"]
        display(HTML(
            '<div class="askshift-note">Parameters (validated against <code>'
            f'{html.escape(str(params_file))}</code>): world <code>{params["world"]}</code>, seed '
            f'{params["seed"]}, fine-tuning set <code>{params["finetune"]["dataset"]}</code>; ER on the '
            f'{r["scale"]} scale of {r["metric"].replace("_", " ")} with {100 * r["confidence"]:g}% '
            f"intervals. Inputs: the {len(inp.deps)} declared deps of the report stage.</div>"))
    return ctx
