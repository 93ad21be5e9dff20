"""The params schema: every key of params.yaml with its type, range or choices, and the rules
between keys.

The `params` stage (the first of the pipeline) checks the whole file against it with
:func:`load_params`, so a typo anywhere (or a key that `dvc exp run -S` added but nothing reads)
stops the pipeline with a message that names the key, the bad value and what is valid, before
any stage's outputs are touched (:mod:`askshift.study.config`).
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from askshift.data.worlds import COMPOSE, OUT_OF_SUPPORT_TRANSFORMS, WORLDS, World
from askshift.methods.robustness import SCALES
from askshift.nn.config import AMPS, DEVICES, OPTIMIZERS, SCHEDULES, STRATEGY_STEPS, TrainConfig
from askshift.nn.weights import content_sha256, local_file, parse_weights
from askshift.study.config import SAME_ARCH, ParamsError, scratch_model
from askshift.study.layout import ASK_EXAMPLE


# ---------------------------------------------------------------- field specs
@dataclass(frozen=True)
class Int:
    lo: int | None = None
    hi: int | None = None

    def check(self, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(key, value, f"expected an integer{_range(self.lo, self.hi)}")
        _check_range(key, value, self.lo, self.hi, "an integer")
        return value


@dataclass(frozen=True)
class Float:
    lo: float | None = None
    hi: float | None = None

    def check(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(key, value, f"expected a number{_range(self.lo, self.hi)}")
        if not math.isfinite(value):
            raise _bad(key, value, f"expected a finite number{_range(self.lo, self.hi)}")
        _check_range(key, value, self.lo, self.hi, "a number")
        return float(value)


@dataclass(frozen=True)
class Bool:
    def check(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _bad(key, value, "expected true or false")
        return value


@dataclass(frozen=True)
class Str:
    def check(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _bad(key, value, "expected a non-empty string")
        return value


class Sha256:
    """A content pin: '' (nothing to pin) or 64 hex digits, kept in lower case."""

    def check(self, key: str, value: Any) -> str:
        if value == "":
            return value
        if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise _bad(key, value, "expected '' or a sha256 of 64 hex digits (as `sha256sum FILE` prints it)")
        return value.lower()


@dataclass(frozen=True)
class Choice:
    choices: tuple

    def check(self, key: str, value: Any) -> Any:
        if isinstance(value, bool) or value not in self.choices:
            valid = ", ".join(str(c) for c in self.choices)
            hint = _did_you_mean(str(value), [str(c) for c in self.choices])
            raise _bad(key, value, f"must be one of: {valid}{hint}")
        return value


@dataclass(frozen=True)
class ListOf:
    item: Any
    min_len: int = 0
    unique: bool = False

    def check(self, key: str, value: Any) -> list:
        if not isinstance(value, (list, tuple)):
            raise _bad(key, value, "expected a list")
        if len(value) < self.min_len:
            raise _bad(key, value, f"expected a list of at least {self.min_len} item(s)")
        out = [self.item.check(f"{key}[{i}]", v) for i, v in enumerate(value)]
        if self.unique and len(set(map(str, out))) != len(out):
            raise _bad(key, value, "items must be unique")
        return out


@dataclass(frozen=True)
class Mapping:
    """A free-form mapping of names to scalars or lists (e.g. timm keyword arguments)."""

    def check(self, key: str, value: Any) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _bad(key, value, "expected a mapping of names to values (or nothing)")
        return dict(value)


def _range(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f" in [{lo}, {hi}]"
    if lo is not None:
        return f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""


def _check_range(key, value, lo, hi, what):
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _bad(key, value, f"expected {what}{_range(lo, hi)}")


def _bad(key: str, value: Any, why: str) -> ParamsError:
    return ParamsError(f"{key} = {value!r}: {why}")


def _did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------- the schema
# One entry per key that some stage reads. Nested dicts are sections. Choices come from the
# modules that define them (the world table, the training config).
FRACTION = Float(0.0, 1.0)


def _union(attr: str) -> tuple[str, ...]:
    """Every world's names of one kind, in order: the schema's choices (each world checks its own
    in :func:`_world_checks`)."""
    return tuple(dict.fromkeys(x for w in WORLDS.values() for x in getattr(w, attr)))


VARIANTS = _union("variants")
SHIFTS = _union("shifts")
STRATEGIES = tuple(STRATEGY_STEPS)
METRICS = ("accuracy", "balanced_accuracy", "worst_group_accuracy")
TRIANGULAR_PEAK_EPOCH = TrainConfig.peak_epoch


def train_schema(images: bool = True) -> dict:
    """Hyper-parameters of one training recipe (see askshift.nn.config.TrainConfig); ``images``:
    the recipe trains on images and may augment them (a linear probe trains on features)."""
    augmentation = {"random_crop": Int(0, 64), "random_flip": Bool()} if images else {}
    return {
        "epochs": Int(1, 10_000),
        "batch_size": Int(2, 65536),  # batch norm needs two examples per batch
        "optimizer": Choice(OPTIMIZERS),
        "lr": Float(0.0, 10.0),
        "weight_decay": Float(0.0, 1.0),
        "schedule": Choice(SCHEDULES),
        "warmup_epochs": Float(0.0, 10_000.0),
        "label_smoothing": Float(0.0, 0.99),
        "grad_clip": Float(0.0, 1e6),
        **augmentation,
    }


SCHEMA: dict = {
    "seed": Int(0, 2**32 - 1),  # numpy and scikit-learn take seeds below 2**32
    "world": Choice(tuple(WORLDS)),
    # source name -> a local copy of its file or folder, instead of the table's origin
    "download": {"local": Mapping()},
    "compute": {
        "device": Choice(DEVICES),
        "amp": Choice(AMPS),
        "threads": Int(0, 256),
        "ddp": Int(1, 64),
    },
    "curate": {
        "image_size": Choice((32,)),
        "reference": {"n_train": Int(100, 50_000), "n_val": Int(50, 50_000), "n_test": Int(100, 10_000)},
        "tint_strength": Float(0.0, 1.0),
        "spurious_tint": {"p": Float(0.1, 1.0)},
        "label_shift": {"p_minority": Float(0.01, 1.0)},
        "pad": {"pixels": Int(1, 15), "value": Int(0, 255)},
        "mixture": {
            "n": Int(20, 10_000),
            "out_fraction": Float(0.05, 0.95),
            "out_of_support_shift": Choice(OUT_OF_SUPPORT_TRANSFORMS),
        },
        # `n_images`, never `size`: DVC's run cache ignores every key named size or nfiles
        "debiased": {"n_images": Int(10, 10_000), "retints": Int(1, 10)},
        "corpus": {
            "letters_per_class": Int(10, 100_000),
            "val_fraction": Float(0.0, 0.5),
            "p_tint": FRACTION,
            "p_background": FRACTION,
            "p_hflip": FRACTION,
            "p_vflip": FRACTION,
            "scale_min": Float(0.2, 1.0),
            "scale_max": Float(0.2, 1.0),
            "max_per_source": Int(0, 10_000_000),
        },
        "grid": {"per_dataset": Int(4, 400)},
    },
    "model": {"arch": Str(), "kwargs": Mapping()},
    "pretrain": {
        "weights": Str(),
        "weights_sha256": Sha256(),
        "train": train_schema(),
    },
    "baseline": {
        "variants": ListOf(Choice(VARIANTS), min_len=1, unique=True),
        "snapshot_epochs": ListOf(Int(1, 10_000), min_len=1, unique=True),
        "subset_fractions": ListOf(Float(0.001, 1.0), unique=True),
        "seeds": Int(1, 64),
        "widths": ListOf(Float(0.05, 4.0), min_len=1, unique=True),
        "model": {"arch": Str(), "kwargs": Mapping()},
        "train": train_schema(),
    },
    "finetune": {
        "dataset": Choice(("reference", "debiased")),
        "strategies": ListOf(Choice(STRATEGIES), min_len=1, unique=True),
        "copies": Int(1, 64),
        "lr_grid": ListOf(Float(0.001, 1000.0), min_len=1, unique=True),
        "min_steps": Int(0, 1_000_000),
        "train": train_schema(),
        "lp": train_schema(images=False),
    },
    "evaluate": {"batch_size": Int(1, 65536), "min_group_size": Int(1, 100_000)},
    "robustness": {
        "scale": Choice(SCALES),
        "metric": Choice(METRICS),
        "confidence": Float(0.5, 0.999),
        "n_boot": Int(0, 100000),
    },
    "report": {
        "in_support_tolerance": Float(0.0, 0.5),
        "min_effect": Float(0.0, 1.0),
        "min_fit_r2": Float(0.0, 1.0),
        "show_code": Bool(),
        "cell_timeout": Int(10, 86400),
    },
    # ---- the paper's analyses (stages interventions, debiased, split, theory)
    "interventions": {
        "variants": ListOf(Choice(_union("group_variants")), min_len=1, unique=True),
        "trials": Int(1, 64),
        "reweight": Bool(),
        "compose": Choice(COMPOSE),
        "dfr": {"Cs": ListOf(Float(1e-6, 1e6), min_len=1, unique=True),
                "val_fraction": Float(0.05, 0.95)},
        "threshold": Float(0.0, 1.0),
    },
    "debiased": {
        "variant": Choice(_union("debias_variants")),
        "trials": Int(1, 64),
        "min_steps": Int(0, 1_000_000),
        "sizes": ListOf(Int(10, 10_000), min_len=1, unique=True),
        "resamples": Int(1, 64),
    },
    "split": {
        "shifts": ListOf(Choice(SHIFTS), min_len=1, unique=True),
        "features": Choice(("pixels", "pretrained", "both")),
        "pixel_size": Choice((8, 16, 32)),
        "k": Int(2, 100),
        "C": Float(1e-6, 1e6),
        "epsilon": Float(1e-6, 1.0),
        "min_part": Int(1, 1_000_000),
        "matched_min_share": Float(0.0, 1.0),
    },
    # `askshift ask` as a stage (askshift/study/ask_stage.py)
    "ask": {
        "example": Choice(SHIFTS),
        "reference": Str(),
        "shifted": Str(),
        "model": Str(),
        "features": Choice(("pretrained", "pixels", "both")),
        "pixel_size": Choice((8, 16, 32)),
        "k": Int(2, 100),
        "epsilon": Float(1e-6, 1.0),
        "on_bad_image": Choice(("stop", "skip")),
        "effect": Bool(),
    },
    "theory": {
        "d": Int(2, 10000),
        "k": Int(1, 10000),
        "n": Int(2, 1_000_000),
        "noise": Float(1e-6, 100.0),
        "inits": Int(0, 1000),
        "steps": Int(1, 10_000_000),
        "n_test": Int(1, 1_000_000),
        "oos_scale": Float(0.0, 100.0),
        "relatedness": Float(0.0, 1.0),
        "n_pretrain": Int(10, 1_000_000),
        "relatedness_grid": ListOf(Float(0.0, 1.0), min_len=1, unique=True),
    },
}


def _world(p: dict) -> World:
    return WORLDS[p["world"]]


def _world_checks(p: dict) -> None:
    """Every name of a variant or shift belongs to the selected world, its sets fit its source,
    and a world without a pre-training corpus gets its weights from pretrain.weights."""
    w = _world(p)
    lists = (("baseline.variants", p["baseline"]["variants"], w.variants, "a reference variant"),
             ("interventions.variants", p["interventions"]["variants"], w.group_variants,
              "a reference variant with group labels"),
             ("split.shifts", p["split"]["shifts"], tuple(w.shifts), "a shift"))
    singles = (("debiased.variant", p["debiased"]["variant"], w.debias_variants, "a variant with a de-biased set"),
               ("ask.example", p["ask"]["example"], tuple(w.shifts), "a shift"),
               ("curate.mixture.out_of_support_shift", p["curate"]["mixture"]["out_of_support_shift"],
                w.out_of_support_transforms, "an out-of-support shift"))
    for key, value, valid, what in lists + singles:
        names = value if isinstance(value, list) else [value]
        bad = [n for n in names if n not in valid]
        if bad:
            raise ParamsError(f"{key} = {value!r}: {bad[0]!r} is not {what} of the {w.name} world "
                              f"(world = {w.name!r}); valid: {', '.join(valid)}")
    r = p["curate"]["reference"]
    if w.test_class_counts is None:
        n = r["n_train"] + r["n_val"] + r["n_test"]
        if n > w.pool_size:
            raise ParamsError(f"curate.reference: n_train + n_val + n_test = {n} but the {w.name} world's "
                              f"source holds {w.pool_size} images")
    else:
        n, n_test = r["n_train"] + r["n_val"], sum(w.test_class_counts)
        if n > w.pool_size:
            raise ParamsError(f"curate.reference: n_train + n_val = {n} but the {w.name} world's training "
                              f"images are {w.pool_size}")
        if r["n_test"] > n_test:
            raise ParamsError(f"curate.reference.n_test = {r['n_test']} but the {w.name} world's test "
                              f"images are {n_test}")
    for name, path in p["download"]["local"].items():
        if not isinstance(path, str) or not Path(path).exists():
            raise ParamsError(f"download.local.{name} = {path!r}: no such file or folder (a local copy of the "
                              f"source's file; relative paths start at the repository root)")
    if p["pretrain"]["weights"] == "pipeline" and not w.has_corpus:
        raise ParamsError(f"pretrain.weights = 'pipeline': the {w.name} world has no pre-training corpus; "
                          "give the model as 'timm:<name.tag>[@<local file>]' (the paper's: "
                          "timm:vit_base_patch32_clip_224.openai, timm:vit_base_patch32_224.augreg_in21k) "
                          "or 'file:<path>'")


def _weights_kind(weights: str) -> str | None:
    """'pipeline', 'timm' or 'file' for a valid ``pretrain.weights`` (a spec that
    :func:`~askshift.nn.weights.parse_weights` reads, e.g. nothing missing after '@'), else None."""
    if weights == "pipeline":
        return weights
    try:
        kind = parse_weights(weights)[0]
    except ValueError:
        return None
    return kind if kind in ("timm", "file") else None


def check_weights_file(weights: str, pinned: str) -> Path | None:
    """The local file (or folder) that ``pretrain.weights`` reads exists and has the content
    ``pretrain.weights_sha256`` pins; returns its path (None: the weights read no local file).
    The file is no DVC dep (it lives outside the repository): its pinned hash, a param of the
    `pretrain` stage, is what re-runs pretraining when the weights change, as the hashes in
    data/sources.yaml do for a `download.local` copy. Run by the params stage and again by the
    pretrain stage before it loads the file."""
    path = None if weights == "pipeline" else local_file(weights)
    if path is None:
        if pinned:
            raise ParamsError(f"pretrain.weights_sha256 = {pinned!r} but pretrain.weights = {weights!r} reads no "
                              "local file: leave it empty ('')")
        return None
    if not Path(path).exists():
        raise ParamsError(f"pretrain.weights = {weights!r}: no such file or folder {path} (relative paths start "
                          "at the repository root)")
    actual = content_sha256(path)
    if not pinned:
        raise ParamsError(f"pretrain.weights_sha256 is empty but pretrain.weights = {weights!r} reads the local "
                          f"file {path}, which DVC does not track: pin its content there (its sha256 now is "
                          f"{actual}), so that other weights at that path re-run pretrain")
    if actual != pinned:
        raise ParamsError(f"pretrain.weights_sha256 = {pinned!r} but {path} (pretrain.weights) has sha256 "
                          f"{actual}: the file changed since it was pinned; put the pinned file back, or set "
                          "pretrain.weights_sha256 to the new hash (this re-runs pretrain)")
    return Path(path)


def _weights_checks(p: dict) -> None:
    check_weights_file(p["pretrain"]["weights"], p["pretrain"]["weights_sha256"])


def _cross_checks(p: dict) -> None:
    """Constraints between keys, checked after every key is valid on its own."""
    c = p["curate"]
    b = p["baseline"]
    if max(b["snapshot_epochs"]) > b["train"]["epochs"]:
        raise ParamsError(
            f"baseline.snapshot_epochs = {b['snapshot_epochs']}: every epoch must be <= "
            f"baseline.train.epochs = {b['train']['epochs']}"
        )
    same = b["model"]["arch"] == SAME_ARCH
    if same and b["model"]["kwargs"]:
        raise ParamsError(f"baseline.model.kwargs = {b['model']['kwargs']}: with baseline.model.arch = same the "
                          "baselines take model.kwargs; set baseline.model.arch to give them their own")
    scratch, scratch_kwargs = "model.kwargs" if same else "baseline.model.kwargs", scratch_model(p)[1]
    if any(w != 1.0 for w in b["widths"]) and "channels" not in scratch_kwargs:
        raise ParamsError(f"baseline.widths = {b['widths']}: widths other than 1.0 scale {scratch}.channels "
                          f"(a timm ResNet's), which {scratch} = {scratch_kwargs} does not set")
    if 1.0 not in b["widths"]:
        raise ParamsError(f"baseline.widths = {b['widths']}: must include 1.0, the configured model")
    w = p["pretrain"]["weights"]
    if _weights_kind(w) is None:
        raise ParamsError(
            f"pretrain.weights = {w!r}: must be 'pipeline' (train on the corpus), "
            "'timm:<name.tag>[@<local file>]' or 'file:<path>'"
        )
    k = _world(p).num_classes
    if c["debiased"]["n_images"] % k:
        raise ParamsError(
            f"curate.debiased.n_images = {c['debiased']['n_images']}: must be a multiple of the {k} "
            "classes (a de-biased set has the same number of images per class)")
    if c["corpus"]["scale_min"] > c["corpus"]["scale_max"]:
        raise ParamsError(
            f"curate.corpus.scale_min = {c['corpus']['scale_min']} is above "
            f"curate.corpus.scale_max = {c['corpus']['scale_max']}"
        )


def _analyses_checks(p: dict) -> None:
    """Constraints of the analysis stages (interventions, debiased, split, theory)."""
    de, iv = p["debiased"], p["interventions"]
    if de["variant"] not in iv["variants"]:
        raise ParamsError(
            f"debiased.variant = {de['variant']!r}: the debiased stage reuses the pre-trained arm of "
            f"the interventions stage, so it must be in interventions.variants = {iv['variants']}")
    k = _world(p).num_classes
    bad = [s for s in de["sizes"] if s % k]
    if bad:
        raise ParamsError(
            f"debiased.sizes = {de['sizes']}: {bad} not a multiple of the {k} classes "
            "(a curated set has the same number of images per class)")
    t = p["theory"]
    if t["k"] >= t["d"]:
        raise ParamsError(f"theory.k = {t['k']} must be smaller than theory.d = {t['d']} "
                          "(the data lies in a proper subspace)")


def _ask_checks(p: dict) -> None:
    """The `ask` stage's model spec and input paths (the default paths are written by the
    `ask_example` stage; any other must exist before the pipeline starts)."""
    a = p["ask"]
    if not (a["model"] == "pretrained" or a["model"].startswith("timm:")):
        raise ParamsError(f"ask.model = {a['model']!r}: must be 'pretrained' (the pipeline's pre-trained model) "
                          "or 'timm:<name.tag>[@<local file>]'")
    for role in ("reference", "shifted"):
        path = Path(a[role])
        if path == ASK_EXAMPLE / role:
            continue
        if not path.exists():
            raise ParamsError(f"ask.{role} = {a[role]!r}: no such file or folder (relative paths start at the "
                              f"repository root; expected an image folder or a CSV / parquet table of image paths)")
        if path.is_file() and path.suffix.lower() not in (".csv", ".parquet"):
            raise ParamsError(f"ask.{role} = {a[role]!r}: expected an image folder or a .csv / .parquet table "
                              "of image paths")


def _training_checks(p: dict) -> None:
    """Each training recipe must be one that fit() can run."""
    for key, t in (("pretrain.train", p["pretrain"]["train"]), ("baseline.train", p["baseline"]["train"]),
                   ("finetune.train", p["finetune"]["train"]), ("finetune.lp", p["finetune"]["lp"])):
        if t["warmup_epochs"] > t["epochs"]:
            raise ParamsError(f"{key}.warmup_epochs = {t['warmup_epochs']} is above {key}.epochs = {t['epochs']}")
        if t["schedule"] == "triangular" and not t["epochs"] > TRIANGULAR_PEAK_EPOCH:
            raise ParamsError(f"{key}.schedule = 'triangular' peaks at epoch {TRIANGULAR_PEAK_EPOCH:g}, so "
                              f"{key}.epochs = {t['epochs']} must be above it (or use cosine / constant)")


def _variant_checks(p: dict) -> None:
    """The analyses reuse the baselines of their reference variants."""
    have = p["baseline"]["variants"]
    need = {"interventions.variants": p["interventions"]["variants"], "debiased.variant": [p["debiased"]["variant"]],
            "split.shifts": sorted({_world(p).shifts[s].variant for s in p["split"]["shifts"]})}
    for key, variants in need.items():
        missing = [v for v in variants if v not in have]
        if missing:
            raise ParamsError(f"{key} needs the baselines of {missing}, but baseline.variants = {have}: "
                              f"add {missing[0]!r} there")


def _size_checks(p: dict) -> None:
    """Curated sets must fit in the plain training split (rarest class)."""
    c, k = p["curate"], _world(p).num_classes
    retints = c["debiased"]["retints"]
    have = _world(p).min_per_class(c["reference"]["n_train"])
    n = c["debiased"]["n_images"]
    if n // k > have:
        raise ParamsError(f"curate.debiased.n_images = {n} needs {n // k} images per class but the rarest class "
                          f"has about {have} in curate.reference.n_train = {c['reference']['n_train']} images")
    for size in p["debiased"]["sizes"]:
        if math.ceil(size / k / retints) > have:
            raise ParamsError(
                f"debiased.sizes: {size} needs {math.ceil(size / k / retints)} originals per class (with "
                f"curate.debiased.retints = {retints}) but the rarest class has about {have} in "
                f"curate.reference.n_train = {c['reference']['n_train']} images")


def _check_arch(key: str, arch: str, kwargs: dict) -> None:
    """``<key>.arch`` is a timm architecture that takes ``<key>.kwargs`` (the project's own
    architectures, e.g. askshift_resnet9, are registered with timm on import)."""
    import timm
    import torch

    from askshift.nn import fast_resnet  # noqa: F401

    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=1, cutoff=0.8)
        raise ParamsError(f"{key}.arch = {arch!r} is not a timm architecture"
                          f"{f' (did you mean {close[0]!r}?)' if close else ''}; `timm.list_models()` lists them")
    try:
        with torch.device("meta"):  # builds the module without allocating its weights
            timm.create_model(arch, num_classes=10, **kwargs)
    except TypeError as e:
        raise ParamsError(f"{key}.kwargs = {kwargs}: {arch} does not take them ({e})") from None


def _model_checks(p: dict) -> None:
    """The architecture, its keyword arguments, the timm weights tag and the device exist here.
    timm and torch are imported only now (the rest of the schema needs neither)."""
    import timm
    import torch

    m = p["model"]
    _check_arch("model", m["arch"], m["kwargs"])
    if p["baseline"]["model"]["arch"] != SAME_ARCH:
        _check_arch("baseline.model", *scratch_model(p))
    w = p["pretrain"]["weights"]
    if w.startswith("timm:"):
        name = parse_weights(w)[1]
        if name not in timm.list_pretrained(name):
            close = difflib.get_close_matches(name, timm.list_pretrained(), n=1, cutoff=0.8)
            raise ParamsError(f"pretrain.weights = {w!r}: timm has no pretrained weights named {name!r}"
                              f"{f' (did you mean {close[0]!r}?)' if close else ''}; names are "
                              "<architecture>.<tag> as `timm.list_pretrained()` lists them")
        if name.split(".", 1)[0] != m["arch"].split(".", 1)[0]:
            raise ParamsError(f"pretrain.weights = {w!r} are weights of {name.split('.', 1)[0]!r} but "
                              f"model.arch = {m['arch']!r}: set model.arch to it")
    ddp, gpus = p["compute"]["ddp"], torch.cuda.device_count()
    if ddp > 1 and p["compute"]["device"] != "cpu" and gpus and ddp > gpus:
        raise ParamsError(f"compute.ddp = {ddp}: one training run would take {ddp} GPUs but this machine has "
                          f"{gpus}; set compute.ddp to at most {gpus}")
    if p["compute"]["device"] == "cuda" and not torch.cuda.is_available():
        raise ParamsError("compute.device = 'cuda' but this machine has no CUDA GPU: use auto (CUDA when "
                          "present, else the CPU) or cpu")


CROSS_CHECKS: list[Callable[[dict], None]] = [_world_checks, _cross_checks, _weights_checks, _analyses_checks, _ask_checks,
                                              _training_checks, _variant_checks, _size_checks, _model_checks]
MACHINE_CHECKS = {_model_checks}  # need timm and torch: the `machine` stage runs them (see check_machine)


def check_machine(params: dict) -> None:
    """The checks of :data:`MACHINE_CHECKS` on the keys they read (``compute``, ``model``,
    ``pretrain.weights``): the `machine` stage runs them, apart from the `params` stage, so
    that a change of any other key does not pay for importing torch and timm."""
    try:
        for check in MACHINE_CHECKS:
            check(params)
    except ParamsError as e:
        raise ParamsError(f"params.yaml: {e}") from None


# ---------------------------------------------------------------- loading
def validate(raw: Any, schema: dict = SCHEMA, prefix: str = "") -> dict:
    """Check `raw` against `schema`; return plain dicts with normalised values."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        raise ParamsError(f"{where}: expected a mapping of keys, got {raw!r}")
    unknown = [k for k in raw if k not in schema]
    if unknown:
        key = str(unknown[0])
        valid = ", ".join(schema)
        raise ParamsError(
            f"unknown key {prefix + key!r}: no stage reads it{_did_you_mean(key, list(schema))}. "
            f"Valid keys under {where}: {valid}"
        )
    out = {}
    for key, spec in schema.items():
        if key not in raw:
            raise ParamsError(f"missing key {prefix + key!r} (expected under {where})")
        if isinstance(spec, dict):
            out[key] = validate(raw[key], spec, f"{prefix}{key}.")
        else:
            out[key] = spec.check(prefix + key, raw[key])
    return out


def check_params(raw: Any, machine: bool = True) -> dict:
    """``raw`` params validated and cross-checked (``machine=False``: without the checks against
    this machine's timm and devices); raises ParamsError naming the key."""
    params = validate(raw)
    for check in CROSS_CHECKS:
        if machine or check not in MACHINE_CHECKS:
            check(params)
    return params


def load_params(path: str | Path = "params.yaml", machine: bool = True) -> dict:
    """Read, validate and return params; raises ParamsError naming the file and key.
    ``machine=False`` skips the checks against this machine's timm and devices."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ParamsError(f"{path}: cannot read params file ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ParamsError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from None
    try:
        raw = YAML(typ="safe", pure=True).load(text)
    except YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    try:
        return check_params(raw, machine)
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from None
