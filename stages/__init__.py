"""The stage scripts (one per DVC stage), each a thin call of
:func:`askshift.study.stage.run_stage` on its library function."""
