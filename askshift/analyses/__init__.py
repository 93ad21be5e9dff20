"""The paper's analyses on top of the main study, one small module per analysis.

- :mod:`askshift.analyses.common` -- training an arm (scratch / pre-trained, optionally
  group-balanced re-weighting), evaluating models on datasets, accuracy points, ER of repeated
  arms (trial-averaged, official interval) with a trial interval.
- :mod:`askshift.analyses.bias` -- Sec. 6: DFR folded into a model, the arms, the corrected
  examples and their overlap.
- :mod:`askshift.analyses.curated` -- Sec. 7: the curated-set sampler (classes balanced, tint
  independent of the label) and its statistics.
- :mod:`askshift.analyses.split` -- Sec. 5.2: density-ratio split of a shift, membership scores,
  ER on the in- / out-of-support parts (and the difficulty-matched control).
- :mod:`askshift.analyses.theory` -- Sec. 4: the simulation report (Theorem 4.1 check, negative
  controls, convergence curve).

No stage paths here: the stage scripts in ``stages/`` read and write files.
"""
