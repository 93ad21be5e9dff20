"""timm-based model factory, our checkpoint format, features and heads.

Everything goes through timm's model API (``forward_features``, ``forward_head(pre_logits=True)``,
``get_classifier``, ``reset_classifier``); no code here names a model's attributes (``.fc``,
``.head``), so any timm architecture works.

Weights (``create_model(..., weights=...)``):

- ``scratch``                    random init (seeded by ``seed`` when given).
- ``pipeline:<path>``            our own checkpoint (:func:`save_model`, a :func:`askshift.nn.train.fit`
                                 checkpoint or snapshot): the model is rebuilt from the recipe stored
                                 in the file, all weights are loaded strictly, then the classifier is
                                 reset to ``num_classes`` with ``reset_classifier``.
- ``timm:<name.tag>``            timm pretrained weights from the Hugging Face hub (needs network;
                                 offline, set ``HF_HUB_OFFLINE=1`` to fail fast instead of retrying).
- ``timm:<name.tag>@<path>``     the same weights from a local file (or directory) instead, via
                                 ``pretrained_cfg_overlay=dict(file=...)``: works offline. timm adapts
                                 the classifier (and position embeddings) as it always does.
- ``file:<path>``                a plain timm-format state dict of ``arch`` (optionally wrapped in
                                 ``state_dict`` / ``model``): backbone loaded, classifier reset.

Inputs: uint8 HWC images are turned into float NCHW tensors normalised per channel with the
``mean``/``std`` stored in the model's recipe (:func:`model_config`): default 0.5/0.5, or the
pretrained config's values for ``timm:`` weights, or those of the source model for ``pipeline:``.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn

from askshift.io import atomic_path
from askshift.nn import fast_resnet  # noqa: F401  (registers askshift_resnet9 with timm)
from askshift.nn.weights import parse_weights

# Default architecture of the offline `digits` world, chosen with benchmarks/bench_train.py --archs
# (2-core CPU, 32x32, batch 128): a timm ResNet-10-T with narrow stages, ~3300 img/s of training
# per CPU core-second, and the best pre-train/fine-tune accuracy among the candidates >= 3000 img/s.
DEFAULT_ARCH = "resnet10t"
DEFAULT_ARCH_KWARGS: dict[str, Any] = {"channels": [16, 32, 64, 128], "stem_width": 16}
DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.5, 0.5, 0.5)
DEFAULT_IMG_SIZE = 32             # the curated images' side (curate.image_size)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")

MODEL_FORMAT = "askshift.model/1"


# --------------------------------------------------------------------------------------------
# Weight specifications
# --------------------------------------------------------------------------------------------
def _base_name(name: str) -> str:
    return name.split(".", 1)[0]


# --------------------------------------------------------------------------------------------
# Model factory
# --------------------------------------------------------------------------------------------
def _timm_create(name: str, num_classes: int, img_size: int, in_chans: int,
                 kwargs: dict[str, Any], **timm_kwargs) -> nn.Module:
    """timm.create_model, passing ``img_size`` only to architectures that accept it."""
    try:
        return timm.create_model(name, num_classes=num_classes, in_chans=in_chans,
                                 img_size=img_size, **timm_kwargs, **kwargs)
    except TypeError as e:
        if "img_size" not in str(e):
            raise
    return timm.create_model(name, num_classes=num_classes, in_chans=in_chans,
                             **timm_kwargs, **kwargs)


def _pretrained_input(timm_name: str) -> tuple[int, str]:
    """The input side and resize interpolation of timm's data config for pre-trained weights
    (e.g. 224, "bicubic" for CLIP ViT-B/32)."""
    cfg = timm.models.get_pretrained_cfg(timm_name)
    if cfg is None:
        raise ValueError(f"{timm_name!r} is not a timm model with a pretrained config "
                         "(expected <name.tag>, e.g. resnet18.a1_in1k)")
    size = int(cfg.input_size[-1]) if cfg.input_size else DEFAULT_IMG_SIZE
    interpolation = getattr(cfg, "interpolation", None) or "bilinear"
    return size, interpolation if interpolation in INTERPOLATIONS else "bilinear"


def create_model(arch: str, num_classes: int, weights: str = "scratch", img_size: int | None = None,
                 in_chans: int = 3, *, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, seed: int | None = None,
                 **kwargs: Any) -> nn.Module:
    """Create any timm architecture ``arch`` (``kwargs`` go to timm, e.g. ResNet ``channels``).

    ``img_size``: the side the model is built for; None = the weights' own (timm's data config
    for ``timm:`` weights, e.g. 224; the source model's for ``pipeline:``; else
    :data:`DEFAULT_IMG_SIZE`). A model with ``timm:`` weights (and any model fine-tuned from it
    through ``pipeline:``) also resizes every image to that side on the way in
    (:func:`resize_input`, with the weights' interpolation), so a model pre-trained at 224 is
    fine-tuned and evaluated at 224 on 32x32 datasets; other models take images as they come.
    ``seed`` (optional) makes the random initialisation reproducible without touching the global
    RNG. The returned model carries its recipe in ``model.askshift_cfg`` (see :func:`model_config`).
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    kind, name, local = parse_weights(weights)
    interpolation, resize = "bilinear", False
    with _seeded(seed):
        if kind == "scratch":
            img_size = img_size or DEFAULT_IMG_SIZE
            model = _timm_create(arch, num_classes, img_size, in_chans, kwargs)
            timm_name = arch
        elif kind == "timm":
            if _base_name(name) != _base_name(arch):
                raise ValueError(f"weights={weights!r} are for architecture {_base_name(name)!r} "
                                 f"but arch={arch!r}")
            timm_name = name if "." in name else arch
            own_size, interpolation = _pretrained_input(timm_name)
            img_size, resize = img_size or own_size, True
            extra: dict[str, Any] = {"pretrained": True}
            if local is not None:
                p = Path(local)
                if not p.exists():
                    raise FileNotFoundError(f"weights={weights!r}: local file {local} does not exist")
                extra["pretrained_cfg_overlay"] = (dict(file=str(p), source="local-dir")
                                                   if p.is_dir() else dict(file=str(p), source=""))
            try:
                model = _timm_create(timm_name, num_classes, img_size, in_chans, kwargs, **extra)
            except Exception as e:  # noqa: BLE001 - hub/network errors come in many types
                if local is not None:
                    raise
                raise RuntimeError(
                    f"could not fetch timm weights {timm_name!r} ({e}). Offline, download the "
                    f"checkpoint elsewhere and pass weights='timm:{timm_name}@/path/to/file'") from e
            if mean is None:
                mean = tuple(model.pretrained_cfg.get("mean", DEFAULT_MEAN))
            if std is None:
                std = tuple(model.pretrained_cfg.get("std", DEFAULT_STD))
        elif kind == "pipeline":
            src = load_model(name)
            src_cfg = model_config(src)
            if _base_name(src_cfg["arch"]) != _base_name(arch):
                raise ValueError(f"weights={weights!r} hold a {src_cfg['arch']!r} model but "
                                 f"arch={arch!r}")
            if src_cfg["in_chans"] != in_chans:
                raise ValueError(f"weights={weights!r} were trained with in_chans="
                                 f"{src_cfg['in_chans']} but in_chans={in_chans}")
            if kwargs and kwargs != src_cfg["kwargs"]:
                raise ValueError(f"weights={weights!r} were built with arch kwargs "
                                 f"{src_cfg['kwargs']} but got {kwargs}")
            img_size = img_size or src_cfg["img_size"]
            if img_size != src_cfg["img_size"]:
                raise ValueError(f"weights={weights!r} were built for img_size="
                                 f"{src_cfg['img_size']} but img_size={img_size}")
            interpolation = src_cfg.get("interpolation", "bilinear")
            resize = src_cfg.get("resize_to") is not None
            model = src
            model.reset_classifier(num_classes)
            timm_name, kwargs = src_cfg["timm_name"], src_cfg["kwargs"]
            mean = src_cfg["mean"] if mean is None else mean
            std = src_cfg["std"] if std is None else std
        else:  # file
            img_size = img_size or DEFAULT_IMG_SIZE
            model = _timm_create(arch, num_classes, img_size, in_chans, kwargs)
            _load_backbone_state(model, _read_state_dict(name), source=weights)
            model.reset_classifier(num_classes)
            timm_name = arch
    model.askshift_cfg = dict(
        arch=arch, timm_name=timm_name, num_classes=num_classes, img_size=img_size,
        in_chans=in_chans, kwargs=dict(kwargs),
        mean=[float(v) for v in (DEFAULT_MEAN if mean is None else mean)],
        std=[float(v) for v in (DEFAULT_STD if std is None else std)],
        weights=weights, interpolation=interpolation, resize_to=img_size if resize else None,
    )
    return model


class _seeded:
    """Context manager: fork the global torch RNG and seed it (no-op when seed is None)."""

    def __init__(self, seed: int | None):
        self.seed = seed
        self._fork = None

    def __enter__(self):
        if self.seed is not None:
            self._fork = torch.random.fork_rng(devices=[])
            self._fork.__enter__()
            torch.manual_seed(self.seed)

    def __exit__(self, *exc):
        if self._fork is not None:
            return self._fork.__exit__(*exc)
        return False


def model_config(model: nn.Module) -> dict[str, Any]:
    """The recipe stored with the model (arch, timm_name, num_classes, img_size, in_chans,
    kwargs, mean, std, weights). ``num_classes`` follows the current classifier."""
    cfg = getattr(model, "askshift_cfg", None)
    if cfg is None:
        raise ValueError("model was not made by askshift.models.create_model (no askshift_cfg); "
                         "create it with create_model() or attach a recipe with attach_config()")
    cfg = copy.deepcopy(cfg)
    cfg["num_classes"] = int(getattr(model, "num_classes", cfg["num_classes"]))
    return cfg


def attach_config(model: nn.Module, arch: str, num_classes: int, img_size: int = 32,
                  in_chans: int = 3, mean=DEFAULT_MEAN, std=DEFAULT_STD, **kwargs) -> nn.Module:
    """Attach a recipe to a timm model built elsewhere so it can be saved / normalised."""
    model.askshift_cfg = dict(arch=arch, timm_name=arch, num_classes=num_classes,
                              img_size=img_size, in_chans=in_chans, kwargs=dict(kwargs),
                              mean=list(mean), std=list(std), weights="scratch", interpolation="bilinear",
                              resize_to=None)
    return model


def normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``(mean, std)`` (in [0, 1] pixel units) the model expects."""
    cfg = getattr(model, "askshift_cfg", None) or {}
    return tuple(cfg.get("mean", DEFAULT_MEAN)), tuple(cfg.get("std", DEFAULT_STD))


def input_size(model: nn.Module) -> tuple[int | None, str]:
    """``(side, interpolation)``: the side every image is resized to on its way into the model
    (None: images as they come; models saved before this key existed too) and how."""
    cfg = getattr(model, "askshift_cfg", None) or {}
    return cfg.get("resize_to"), cfg.get("interpolation", "bilinear")


def resize_input(x: torch.Tensor, size: int | None, interpolation: str = "bilinear") -> torch.Tensor:
    """A float NCHW batch resized to ``size`` x ``size`` (the whole image: the datasets' images
    are already framed, so timm's centre crop is not applied); unchanged when it already has
    that size or ``size`` is None. Shrinking is antialiased."""
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation={interpolation!r}; valid: {', '.join(INTERPOLATIONS)}")
    if interpolation == "nearest":
        return F.interpolate(x, size=(size, size), mode="nearest")
    return F.interpolate(x, size=(size, size), mode=interpolation, align_corners=False,
                         antialias=min(x.shape[-2:]) > size)


def to_input(images: torch.Tensor, mean: Sequence[float], std: Sequence[float],
             dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 NHWC batch -> normalised float NCHW (channels_last memory, no copy of the layout)."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"expected a uint8 (N, H, W, C) tensor, got {images.dtype} "
                         f"{tuple(images.shape)}")
    c = images.shape[-1]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"images have {c} channels but mean/std have {len(mean)}/{len(std)}")
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=dtype, device=images.device)
    shift = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=dtype, device=images.device)
    x = images.to(dtype).mul_(scale).add_(shift)       # still NHWC, broadcast over last dim
    return x.permute(0, 3, 1, 2)                        # NCHW view, channels_last strides


# --------------------------------------------------------------------------------------------
# Our checkpoint format
# --------------------------------------------------------------------------------------------
def model_payload(model: nn.Module) -> dict[str, Any]:
    """Everything needed to rebuild ``model``: recipe + CPU state dict."""
    return {"format": MODEL_FORMAT, "config": model_config(model),
            "state_dict": {k: v.detach().to("cpu", copy=True)
                           for k, v in model.state_dict().items()}}


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file beside ``path``, then renamed: never half-written."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def save_model(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save the model in our pipeline format (loadable with ``pipeline:<path>``)."""
    return atomic_torch_save(model_payload(model), path)


def _model_from_payload(payload: dict[str, Any], source: str) -> nn.Module:
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt is not None and fmt.startswith("askshift.train/"):   # a fit() checkpoint
        payload = payload["model"]
        fmt = payload.get("format")
    if fmt != MODEL_FORMAT:
        raise ValueError(f"{source} is not an askshift model checkpoint (format={fmt!r}); "
                         "plain timm state dicts load with weights='file:<path>'")
    cfg = payload["config"]
    model = _timm_create(cfg["timm_name"], cfg["num_classes"], cfg["img_size"], cfg["in_chans"],
                         cfg["kwargs"])
    model.load_state_dict(payload["state_dict"], strict=True)
    model.askshift_cfg = copy.deepcopy(cfg)
    return model


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`save_model` / :func:`askshift.nn.train.fit` exactly."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model checkpoint {path} does not exist")
    try:
        # weights_only: a checkpoint can never run code; anything else is not ours
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises pickle, zip and runtime errors alike
        # not torch's own text: it suggests weights_only=False, i.e. running the file's code
        raise ValueError(f"{path} is not an askshift model file (torch.load: {type(e).__name__}); models are "
                         "the .pt files the pipeline writes under models/") from None
    return _model_from_payload(payload, str(path))


def _read_state_dict(path: str) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"weights file {p} does not exist")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(p))
    sd = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and sd.get("format", "").startswith("askshift."):
        raise ValueError(f"{p} is an askshift checkpoint: use weights='pipeline:{p}'")
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    return {k.removeprefix("module."): v for k, v in sd.items()}


def _head_keys(model: nn.Module) -> set[str]:
    """state_dict keys that belong to the classifier, found by identity via get_classifier()."""
    head = model.get_classifier()
    head_tensors = {id(t) for t in list(head.parameters()) + list(head.buffers())}
    return {k for k, t in list(model.named_parameters()) + list(model.named_buffers())
            if id(t) in head_tensors}


def _load_backbone_state(model: nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    head = _head_keys(model)
    sd = {k: v for k, v in sd.items() if k not in head}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if k not in head]
    if missing or unexpected:
        raise ValueError(f"weights {source} do not match the architecture: missing "
                         f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                         f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")


# --------------------------------------------------------------------------------------------
# Features and heads
# --------------------------------------------------------------------------------------------
def features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Penultimate (pre-logits) features: ``forward_head(forward_features(x), pre_logits=True)``."""
    return model.forward_head(model.forward_features(x), pre_logits=True)


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    return list(model.get_classifier().parameters())


def backbone_parameters(model: nn.Module) -> list[nn.Parameter]:
    head = {id(p) for p in head_parameters(model)}
    return [p for p in model.parameters() if id(p) not in head]


def _linear_head(model: nn.Module) -> nn.Module:
    head = model.get_classifier()
    if isinstance(head, nn.Linear) or (isinstance(head, nn.Conv2d) and head.kernel_size == (1, 1)
                                       and head.groups == 1):
        return head
    raise TypeError(f"the classifier of {type(model).__name__} is {type(head).__name__}, not a "
                    "linear layer; heads cannot be read or written")


def get_head(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Copy of the linear head as ``(weight (C, F), bias (C,) or None)``."""
    head = _linear_head(model)
    w = head.weight.detach().reshape(head.weight.shape[0], -1).clone()
    b = None if head.bias is None else head.bias.detach().clone()
    return w, b


@torch.no_grad()
def set_head(model: nn.Module, weight, bias=None) -> None:
    """Write a linear head ``logits = features @ weight.T + bias`` into the model.

    ``weight`` is (C, F) with F = ``model.num_features`` (or the pre-logits width); when C differs
    from the current number of classes the classifier is first reset with ``reset_classifier``.
    """
    weight = torch.as_tensor(np.asarray(weight) if not torch.is_tensor(weight) else weight)
    if weight.ndim != 2:
        raise ValueError(f"head weight must be 2-D (classes, features), got {tuple(weight.shape)}")
    if int(getattr(model, "num_classes", -1)) != weight.shape[0]:
        model.reset_classifier(weight.shape[0])
    head = _linear_head(model)
    if head.weight.reshape(head.weight.shape[0], -1).shape != weight.shape:
        raise ValueError(f"head weight shape {tuple(weight.shape)} does not match the classifier "
                         f"{tuple(head.weight.shape[:2])}")
    head.weight.copy_(weight.reshape(head.weight.shape).to(head.weight))
    if bias is not None:
        bias = torch.as_tensor(np.asarray(bias) if not torch.is_tensor(bias) else bias)
        if head.bias is None:
            raise ValueError("this classifier has no bias")
        head.bias.copy_(bias.reshape(head.bias.shape).to(head.bias))
    elif head.bias is not None:
        head.bias.zero_()
