"""The stage scripts (one per DVC stage). Before any of them imports torch: a stage run by a
DVC queue worker is pinned to that worker's share of the cores (askshift.study.cores)."""
from askshift.study import cores

cores.PINNED.update(cores.pin_queue_worker())
