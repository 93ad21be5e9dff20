"""A fast from-scratch CIFAR-10 network, registered with timm as ``askshift_resnet9``.

The ResNet-9 of the fast CIFAR-10 training literature (Myrtle.ai's DAWNBench entry, D. Page,
"How to train your ResNet", 2018: 94% test accuracy in about 26 s on one V100): a 3x3 stem, three
stages that double the width and halve the side with a max-pool, residual blocks after the first
and the last, a global max-pool and a linear classifier. Every conv is 3x3 with batch norm and
ReLU. It is meant for the CIFAR-10 world's baselines, e.g. ``baseline.model.arch:
askshift_resnet9`` with flips and 4-pixel crops (docs/worlds.md gives the recipe).

It speaks timm's model API (``forward_features``, ``forward_head(pre_logits=True)``,
``get_classifier``, ``reset_classifier``, ``num_features``), so the pipeline's probes, DFR and
checkpoints treat it like any timm model. ``channels`` (stem, stage 1, 2, 3) is what
``baseline.widths`` scales.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.models import register_model
from torch import nn

NAME = "askshift_resnet9"
DEFAULT_CHANNELS = (64, 128, 256, 512)


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(c, c), _conv_bn(c, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 3,
                 channels: Sequence[int] = DEFAULT_CHANNELS, drop_rate: float = 0.0):
        super().__init__()
        if len(channels) != 4 or any(int(c) < 1 for c in channels):
            raise ValueError(f"{NAME}: channels={list(channels)} must be 4 positive widths "
                             "(stem, stage 1, stage 2, stage 3)")
        c0, c1, c2, c3 = (int(c) for c in channels)
        self.stem = _conv_bn(in_chans, c0)
        self.stages = nn.Sequential(
            nn.Sequential(_conv_bn(c0, c1), nn.MaxPool2d(2), _Residual(c1)),
            nn.Sequential(_conv_bn(c1, c2), nn.MaxPool2d(2)),
            nn.Sequential(_conv_bn(c2, c3), nn.MaxPool2d(2), _Residual(c3)),
        )
        self.num_classes, self.num_features, self.drop_rate = num_classes, c3, drop_rate
        self.fc = nn.Linear(c3, num_classes) if num_classes > 0 else nn.Identity()
        self.pretrained_cfg = self.default_cfg = {
            "architecture": NAME, "num_classes": num_classes, "input_size": (in_chans, 32, 32),
            "interpolation": "bilinear", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.amax(x, dim=(2, 3))          # global max-pool, as the fast recipes do
        if self.drop_rate:
            x = nn.functional.dropout(x, self.drop_rate, self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


@register_model
def askshift_resnet9(pretrained: bool = False, **kwargs) -> ResNet9:
    """The fast CIFAR-10 ResNet-9, for training from scratch (no pre-trained weights exist)."""
    if pretrained:
        raise ValueError(f"{NAME} has no pre-trained weights; it is trained from scratch")
    for factory_key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):   # timm's own
        kwargs.pop(factory_key, None)
    return ResNet9(**kwargs)
