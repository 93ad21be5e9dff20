"""`askshift ask`: the paper's question for a user's own (reference, shifted) image sets.

1. **Support** (Sec. 5.2): features of both sets (a pinned pre-trained model's frozen features,
   pooled pixels, or both), streamed in batches; the cross-fitted, temperature-calibrated
   density-ratio split of the shifted set; the share out of the reference's support with a 95%
   bootstrap interval over the shifted examples and its spread over the cross-fitting folds; the
   domain classifier's AUROC.
2. **Effect** (when both sets are labelled and the model is the pipeline's size): the study's own
   recipes from params.yaml on the user's data: from-scratch baselines on the reference (one run's
   snapshots and runs on data subsets), the pre-trained model fine-tuned (FT, LP-FT), ER of each
   on the whole shifted set and on its in- / out-of-support parts, with 95% intervals and r².
3. **Verdict** in plain words (:mod:`askshift.methods.verdict`).
"""
from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from askshift.data.imagesets import ImageSet, ImageSetError, check_images, iter_batches, label_codes, list_images
from askshift.methods import verdict as V
from askshift.study import layout

FEATURES = ("pretrained", "pixels", "both")
MAX_EFFECT_SIZE = 64      # the effect part trains models on CPU: the pipeline's input size, not 224


@dataclass(frozen=True)
class AskOptions:
    model: str = str(layout.PRETRAINED_MODEL)   # a model file saved by the pipeline, or timm:<name.tag>[@file]
    features: str = "both"
    pixel_size: int = 16
    k: int = 10
    C: float = 1.0
    epsilon: float = 0.2
    seed: int = 0
    batch_size: int = 256
    device: str = "auto"
    on_bad_image: str = "stop"
    effect: bool = True
    params_file: str = "params.yaml"
    n_boot: int = 1000
    progress: bool | None = None

    def check(self) -> None:
        if self.features not in FEATURES:
            raise ImageSetError(f"--features {self.features!r} is not valid; choose one of {FEATURES}")
        if not 0 < self.epsilon <= 1:
            raise ImageSetError(f"--epsilon {self.epsilon}: expected a number in (0, 1] (paper 0.2)")
        if self.k < 2:
            raise ImageSetError(f"--k {self.k}: expected an integer >= 2 (cross-fitting folds; paper 10)")
        if self.batch_size < 1:
            raise ImageSetError(f"--batch-size {self.batch_size}: expected an integer >= 1")
        if not self.model.startswith("timm:") and not Path(self.model).is_file():
            raise ImageSetError(missing_model(self.model))


def missing_model(spec: str) -> str:
    hint = (" (the digits world's pre-trained model: run `dvc repro pretrain`, or `dvc pull`)"
            if Path(spec) == layout.PRETRAINED_MODEL else "")
    return (f"--model {spec}: no such file{hint}; expected a model saved by the pipeline or "
            "timm:<name.tag>[@local file]")


# ---------------------------------------------------------------- the feature model
def load_feature_model(spec: str):
    """``(model, input size, description)`` for a pipeline model file or ``timm:<name.tag>[@file]``."""
    from askshift.nn import models

    if spec.startswith("timm:"):
        name = models.parse_weights(spec)[1]
        try:   # built for the weights' own input side (timm's data config)
            model = models.create_model(name.split(".")[0], 1, weights=spec)
        except (RuntimeError, FileNotFoundError, ValueError) as e:
            raise ImageSetError(f"--model {spec}: {e}") from None
        size = int(models.model_config(model)["img_size"])
        return model, size, f"timm {name} at {size}x{size}"
    path = Path(spec)
    if not path.is_file():
        raise ImageSetError(missing_model(spec))
    try:
        model = models.load_model(path)
    except (ValueError, RuntimeError, OSError) as e:
        raise ImageSetError(f"--model {spec}: not a model saved by this pipeline ({e})") from None
    cfg = models.model_config(model)
    return model, int(cfg["img_size"]), f"{cfg['arch']} from {spec} at {cfg['img_size']}x{cfg['img_size']}"


def features(images: ImageSet, model, size: int, opts: AskOptions, role: str,
             keep_images: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Features of every image, one batch in memory at a time (``keep_images``: also return
    the decoded images, for the effect part). Per batch, the split step's own features."""
    from askshift.study import split

    feats, kept = [], []
    bar = tqdm(total=len(images), desc=f"features of {role}", unit="img", disable=opts.progress is False,
               leave=False)
    for batch in iter_batches(images, size, opts.batch_size, role=role):
        feats.append(split.features(batch, opts.features, opts.pixel_size, model, opts.batch_size, opts.device))
        if keep_images:
            kept.append(batch)
        bar.update(len(batch))
    bar.close()
    return np.concatenate(feats), (np.concatenate(kept) if keep_images else None)


# ---------------------------------------------------------------- support
def share_interval(out_of_support: np.ndarray, folds: np.ndarray, n_boot: int, seed: int) -> dict:
    """The out-of-support share, its 95% bootstrap interval over the shifted examples, and its
    range over the cross-fitting folds (each fold's examples were scored by another classifier).
    A bootstrap resample's share of a 0/1 mask is Binomial(n, share) / n, drawn as such: no
    (n_boot x n) index matrix (800 MB at 100,000 images)."""
    oos = np.asarray(out_of_support, dtype=float)
    rng = np.random.default_rng(seed)
    boots = rng.binomial(len(oos), oos.mean(), size=n_boot) / len(oos) if n_boot else np.array([oos.mean()])
    per_fold = [float(oos[folds == f].mean()) for f in np.unique(folds)]
    return {"share": float(oos.mean()), "low": float(np.quantile(boots, 0.025)),
            "high": float(np.quantile(boots, 0.975)), "fold_min": min(per_fold), "fold_max": max(per_fold),
            "n_boot": int(n_boot)}


def support(ref_feats: np.ndarray, shift_feats: np.ndarray, opts: AskOptions) -> tuple[dict, np.ndarray, np.ndarray]:
    """The split: ``(numbers, log density ratio of each shifted example, its out-of-support mask)``."""
    from askshift.methods.split import split_shift

    k = min(opts.k, len(ref_feats), len(shift_feats))
    if k < 2:
        raise ImageSetError(f"need at least 2 images in each set for cross-fitting, got {len(ref_feats)} reference "
                            f"and {len(shift_feats)} shifted")
    res, oos = split_shift(ref_feats, shift_feats, k=k, C=opts.C, seed=opts.seed, epsilon=opts.epsilon)
    numbers = {"n_reference": int(len(ref_feats)), "n_shifted": int(len(shift_feats)), "k": int(k),
               "epsilon": opts.epsilon, "temperature": res.temperature, "domain_auroc": res.domain_auroc,
               "log_loss_calibrated": res.log_loss_calibrated, "log_loss_uncalibrated": res.log_loss_uncalibrated,
               "out_of_support": share_interval(oos, res.fold_shift, opts.n_boot, opts.seed),
               # the same rule applied to the reference's own (out-of-fold) examples: ~0 when calibrated
               "reference_below_epsilon": float((res.ratio_ref < opts.epsilon).mean())}
    return numbers, res.log_ratio_shift, oos


# ---------------------------------------------------------------- effect
def _split_reference(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Stratified 70 / 10 / 20 train / val / test indices of the reference set."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    rest, test = train_test_split(idx, test_size=0.2, stratify=labels, random_state=seed)
    train, val = train_test_split(rest, test_size=0.125, stratify=labels[rest], random_state=seed)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def recipes(params_file: str | Path) -> dict:
    """The study's training recipes that the effect part uses, from a params file (validated)."""
    from askshift.study.params import load_params

    p = load_params(params_file, machine=False)
    return {"baseline": p["baseline"], "finetune": p["finetune"], "compute": p["compute"]}


def effect(ref_images: np.ndarray, ref_labels: np.ndarray, shift_images: np.ndarray, shift_labels: np.ndarray,
           out_of_support: np.ndarray, model, model_path: str, opts: AskOptions, recipe: dict) -> dict:
    """Baselines from scratch and fine-tuned pre-trained models on the user's reference data,
    with the study's recipes (:func:`recipes`: ``baseline`` train / snapshot_epochs /
    subset_fractions, ``finetune`` train / lp / min_steps, ``compute``); accuracies and ER on the
    whole shift and per part."""
    from askshift.methods.er_tables import shift_er
    from askshift.methods.split import part_er, part_points
    from askshift.nn import models, train
    from askshift.nn.strategies import finetune
    from askshift.study.training import train_config

    b, f, compute = recipe["baseline"], recipe["finetune"], {**recipe["compute"], "device": opts.device}
    src = models.model_config(model)
    arch, kwargs, size = src["arch"], src["kwargs"], src["img_size"]
    n_classes = int(ref_labels.max()) + 1
    parts = _split_reference(ref_labels, opts.seed)
    tr, va, te = ((ref_images[parts[s]], ref_labels[parts[s]]) for s in ("train", "val", "test"))
    runs: list[tuple[dict, object]] = []    # (what the model is, the model)

    # baselines: one full run's snapshots, and runs on stratified subsets
    seed = layout.run_seed(opts.seed, "ask", "baseline")
    tcfg = train_config(b["train"], compute, seed, len(tr[0]))
    scratch = models.create_model(arch, n_classes, img_size=size, seed=seed, **kwargs)
    with tempfile.TemporaryDirectory(prefix="askshift-ask-") as tmp:
        epochs = [e for e in b["snapshot_epochs"] if e <= tcfg.epochs]
        train.fit(scratch, tr, va, tcfg, ckpt_dir=tmp, save_epochs=epochs)
        for e in epochs:
            runs.append(({"model": f"baseline/full-e{e}", "role": "baseline", "strategy": "scratch", "copy": 0},
                         models.load_model(train.snapshot_path(tmp, e))))
    rng = np.random.default_rng(seed)
    for frac in b["subset_fractions"]:
        keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(tr[1] == c), max(1, round(frac * (tr[1] == c).sum())),
                                                  replace=False) for c in np.unique(tr[1])]))
        m = models.create_model(arch, n_classes, img_size=size, seed=seed, **kwargs)
        train.fit(m, (tr[0][keep], tr[1][keep]), None, train_config(b["train"], compute, seed, len(keep)))
        runs.append(({"model": f"baseline/subset-{frac:g}", "role": "baseline", "strategy": "scratch", "copy": 0}, m))
    # the pre-trained model fine-tuned
    for strategy in ("ft", "lpft"):
        s = layout.run_seed(opts.seed, "ask", strategy)
        ep = layout.epochs_for(len(tr[0]), f["train"]["batch_size"], f["train"]["epochs"], f["min_steps"])
        lp_ep = layout.epochs_for(len(tr[0]), f["lp"]["batch_size"], f["lp"]["epochs"], f["min_steps"])
        m = models.create_model(arch, n_classes, weights=f"pipeline:{model_path}", img_size=size, seed=s)
        finetune(m, tr, va, strategy, train_config({**f["train"], "epochs": ep}, compute, s, len(tr[0])),
                 train_config({**f["lp"], "epochs": lp_ep}, compute, s, len(tr[0])))
        runs.append(({"model": f"pretrained/{strategy}", "role": "pretrained", "strategy": strategy, "copy": 0}, m))

    info, correct = [], []
    for row, m in runs:
        ref_ok = train.predict(m, te[0], device=opts.device).argmax(1) == te[1]
        shift_ok = train.predict(m, shift_images, device=opts.device).argmax(1) == shift_labels
        info.append({**row, "variant": "custom", "ref_acc": float(ref_ok.mean()), "shift_acc": float(shift_ok.mean())})
        correct.append(shift_ok)
    points = pd.DataFrame(info)
    whole, line, _ = shift_er(points, "probit", 0.95, 0, opts.seed)
    oos = np.asarray(out_of_support, bool)
    by_part = part_er(part_points(np.array(correct), points.drop(columns="shift_acc"),
                                  {"out": oos.astype(float), "in": (~oos).astype(float)}), min_examples=20)

    def rows(frame):  # strategy -> its ER row; a part without ER (too few examples) has none
        keep = frame[frame["role"] == "pretrained"] if "role" in frame else frame.iloc[0:0]
        return {r["strategy"]: {k: r[k] for k in ("er", "er_low", "er_high", "ref_acc", "shift_acc", "r2", "n_baseline")}
                for r in keep.to_dict("records")}

    notes = {r["part"]: r["note"] for r in by_part.to_dict("records") if r.get("note")}
    return {"n_train": int(len(tr[0])), "n_val": int(len(va[0])), "n_test": int(len(te[0])),
            "classes": int(n_classes), "models": points.to_dict("records"),
            "er": {"all": rows(whole), **{part: rows(by_part[by_part["part"] == part]) for part in ("out", "in")}},
            "line": line[["x", "predicted", "lower", "upper"]].to_dict("list"), "notes": notes, "recipes": {"baseline": b["train"], "snapshot_epochs": b["snapshot_epochs"],
                                        "subset_fractions": b["subset_fractions"], "finetune": f["train"],
                                        "lp": f["lp"], "min_steps": f["min_steps"]}}


# ---------------------------------------------------------------- the whole question
def read_sets(reference: str, shifted: str, opts: AskOptions):
    """Both sets listed, their headers checked and their labels coded (:func:`label_codes`):
    every input error before any work. Returns ``(ref, shifted, ref labels, shifted labels, classes)``."""
    opts.check()
    ref = check_images(list_images(reference, "reference"), opts.on_bad_image, "reference")
    sh = check_images(list_images(shifted, "shifted"), opts.on_bad_image, "shifted")
    return (ref, sh, *label_codes(ref, sh))


def ask(reference: str, shifted: str, opts: AskOptions = AskOptions(),
        recipe: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """Every number of the answer (the content of ask.json) and one row per shifted image
    (path, label, log density ratio, out_of_support). ``recipe``: the effect part's training
    recipes (:func:`recipes`; default: read from ``opts.params_file``)."""
    ref, sh, ref_y, sh_y, classes = read_sets(reference, shifted, opts)
    model, size, described = load_feature_model(opts.model)
    if opts.features != "pretrained" and size % opts.pixel_size:
        raise ImageSetError(f"--pixel-size {opts.pixel_size} must divide the model's input size {size}")
    want_effect = opts.effect and sh_y is not None and not opts.model.startswith("timm:") and size <= MAX_EFFECT_SIZE
    ref_f, ref_img = features(ref, model, size, opts, "reference", keep_images=want_effect)
    sh_f, sh_img = features(sh, model, size, opts, "shifted", keep_images=want_effect)
    numbers, log_ratio, oos = support(ref_f, sh_f, opts)
    result = {"reference": _describe(ref), "shifted": _describe(sh), "classes": classes,
              "model": described, "options": asdict(opts), "support": numbers,
              "warnings": size_warnings(ref, sh, size)}
    if want_effect:
        result["effect"] = effect(ref_img, ref_y, sh_img, sh_y, oos, model, opts.model, opts,
                                  recipe or recipes(opts.params_file))
    elif opts.effect:
        result["effect_skipped"] = ("the shifted set has no labels" if sh_y is None else
                                    "the effect part trains at the pipeline model's size on CPU; "
                                    f"{described} is not such a model")
    s = numbers["out_of_support"]
    # the verdict reads the wider of the bootstrap interval (sampling of the shifted images) and
    # the range over folds (each scored by another classifier): a small set is not over-trusted
    result["verdict"] = V.decide(s["share"], min(s["low"], s["fold_min"]), max(s["high"], s["fold_max"]),
                                 numbers["n_shifted"], numbers["domain_auroc"],
                                 (result.get("effect") or {}).get("er")).to_dict()
    table = pd.DataFrame({"path": [str(p) for p in sh.paths],
                          "label": sh.labels if sh.labels is not None else None,
                          "log_ratio": log_ratio, "out_of_support": oos})
    return result, table


def size_warnings(ref: ImageSet, sh: ImageSet, size: int, spread: float = 16.0) -> list[str]:
    """Sizes that the reader should know about: a set whose image areas differ by more than
    ``spread`` times, or two sets whose median areas do (after resizing to ``size``, a change of
    resolution is itself a difference the domain classifier may see)."""
    out = []
    for role, images in (("reference", ref), ("shifted", sh)):
        s = images.size_summary()
        if s and s["area_ratio"] > spread:
            out.append(f"the {role} images differ widely in size (largest / smallest area {s['area_ratio']:.0f}x: "
                       f"widths {s['width'][0]}-{s['width'][2]}, heights {s['height'][0]}-{s['height'][2]}); all were resized to "
                       f"{size}x{size}")
    a, b = (np.median(np.prod(i.sizes, axis=1)) for i in (ref, sh))
    if max(a, b) / max(min(a, b), 1) > spread ** 0.5:
        out.append(f"the median image area differs {max(a, b) / max(min(a, b), 1):.0f}x between the sets: after "
                   f"resizing to {size}x{size}, sharpness may tell them apart as much as content does")
    return out


def _describe(images: ImageSet) -> dict:
    return {"source": images.source, "layout": images.layout, "n": len(images),
            "labelled": images.labels is not None, "classes": images.classes[:50],
            "sizes": images.size_summary(), "skipped": [{"file": f, "why": w} for f, w in images.bad]}
