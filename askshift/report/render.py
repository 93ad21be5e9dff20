"""Execute notebook templates with papermill and render them to self-contained HTML.

The kernel: a kernelspec named `askshift-report` that runs *this* interpreter
(`sys.executable -m ipykernel_launcher`), written into a private folder that is put first on
JUPYTER_PATH. So a fresh clone needs no `ipykernel install`, and a user's own `python3`
kernelspec (which may point at another Python) can never be picked up by accident.

The HTML: nbconvert's lab template with every script tag that would fetch from the network
(require.js, MathJax, mermaid) removed; figures are embedded as base64 PNG, so one file is the
whole page and opens offline. Code cells are hidden unless `show_code` is set.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

KERNEL_NAME = "askshift-report"
TEMPLATES = Path(__file__).parent / "templates"
# the nbconvert template every part is rendered with (a dep of each part's stage in dvc.yaml)
HTML_TEMPLATE = "askshift/report/templates/askshift/index.html.j2"


@contextmanager
def kernel_env(root: str | Path):
    """A kernelspec for this interpreter, first on JUPYTER_PATH, for the duration of the block."""
    root = str(Path(root).resolve())
    with tempfile.TemporaryDirectory(prefix="askshift-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {
            # quiet kernel log: ipykernel 7 warns on every start that a local TCP kernel is not
            # encrypted (it listens on 127.0.0.1 only) and logs the interrupt it gets at shutdown.
            # A failing cell still fails the stage, with its traceback (papermill).
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                     "--IPKernelApp.log_level=CRITICAL"],
            "display_name": f"askshift report ({Path(sys.executable).parent.parent.name})",
            "language": "python",
            "env": {"PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
                    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                    "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
            "metadata": {"debugger": False},
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
        old = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [tmp, old]))
        try:
            yield KERNEL_NAME
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def execute(template: str | Path, output: str | Path, parameters: dict, root: str | Path,
            kernel_name: str, timeout: int) -> None:
    """Run one template with papermill (cwd = repo root) into `output` (.ipynb).
    Raises papermill.PapermillExecutionError naming the failing cell."""
    import papermill as pm

    pm.execute_notebook(str(template), str(output), parameters=parameters, kernel_name=kernel_name,
                        cwd=str(root), progress_bar=False, log_output=False,
                        execution_timeout=timeout, report_mode=False)


VOLATILE = ("start_time", "end_time", "duration", "input_path", "output_path")


def strip_run_metadata(notebook: str | Path) -> None:
    """Remove what differs between two executions of the same notebook on the same inputs:
    papermill's start / end times and durations, the kernel's execution timestamps, the
    temporary paths and the random id of the cell papermill injects. The executed notebook (and its HTML) is then a function of its inputs."""
    path = Path(notebook)
    nb = json.loads(path.read_text(encoding="utf-8"))
    for meta in [nb.get("metadata", {}).get("papermill", {})] + [c.get("metadata", {}).get("papermill", {})
                                                                  for c in nb.get("cells", [])]:
        for key in VOLATILE:
            meta.pop(key, None)
    for c in nb.get("cells", []):
        c.get("metadata", {}).pop("execution", None)
        if "injected-parameters" in c.get("metadata", {}).get("tags", []):
            c["id"] = "injected-parameters"  # papermill gives the cell it adds a random id
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def to_html(notebook: str | Path, output: str | Path, title: str, show_code: bool = False,
            back_link: str | None = "../index.html") -> None:
    """Render an executed notebook to one self-contained HTML file."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    nb.metadata["title"] = title
    exporter = HTMLExporter(template_file=str(Path(HTML_TEMPLATE).relative_to("askshift/report/templates")),
                            extra_template_paths=[str(TEMPLATES)],
                            exclude_input=not show_code, exclude_input_prompt=not show_code,
                            exclude_output_prompt=True, embed_images=True)
    body, _ = exporter.from_notebook_node(nb, resources={"askshift_back_link": back_link})
    Path(output).write_text(body, encoding="utf-8")
