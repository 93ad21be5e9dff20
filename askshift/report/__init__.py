"""The audit report: papermill notebooks rendered to HTML, a claims table and provenance.

    python -m stages.report_part PART   (the `report_<part>` stages of dvc.yaml)
    python -m stages.report             (the `report` stage: the index page)

- `parts`: one entry per notebook (a part of the paper) and the pipeline outputs it reads.
- `part`: one part's notebook executed and rendered, with the params and deps its stage declares.
- `inputs`: what a notebook may read. A part reads only the outputs that dvc.yaml declares as
  deps of its stage; anything else counts as "not produced by this pipeline run", so the
  rendered report is a function of its declared deps.
- `figures`: matplotlib helpers (probit-scaled accuracy-on-the-line, ER intervals, image grids).
- `claims`: the paper's claims, our measurement with its interval, and the explicit rule that
  decides whether they agree.
- `provenance`: git commit, dvc.lock hashes, params, package versions, device, stage wall times.
- `render`: the kernel, papermill execution and nbconvert HTML rendering.
- `index`, `build`: the one page `reports/index.html` that ties it all together.
"""
