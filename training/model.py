"""SVBR-Net in PyTorch, exactly as SPEC §2.

Two U-Net-like encoder-decoders: branch B reads the blur map, branch X the
image; branch B's features are concatenated into branch X at every scale.

I/O (SPEC §1): ``image`` float32 N×3×H×W RGB in [0, 1]; ``blur_map`` float32
N×1×H×W, radius / ``MAX_RADIUS_PX`` in [0, 1]; output N×3×H×W in [0, 1].
H and W must be multiples of ``SIZE_MULTIPLE`` (4).

Output head (the one deviation from the paper, see README "Output head"):
``residual`` (the default, the shipped model) predicts a correction added to
the input, ``clip(image + conv3×3(x23), 0, 1)``, the convolution zero-initialised
so that the untrained network is exactly the identity; ``sigmoid`` is the
paper's ``sigmoid(conv3×3(x23))``. Both have the same 362,099 parameters and
the same state-dict keys; checkpoints record which one they hold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from runtime.constants import SIZE_MULTIPLE

#: The bundled checkpoint (weights + metadata), shipped inside the package.
PRETRAINED_PATH = Path(__file__).resolve().parent / "weights" / "svbrnet_cpu.pt"


class T1(nn.Sequential):
    """Conv 3×3 (same, bias) → BatchNorm → ReLU: any → ``out_channels``, same resolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=True),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class T2(nn.Module):
    """T1 → T1 plus the block's input (identity residual): c → c."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(T1(channels, channels), T1(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + x


class T3(nn.Module):
    """Downsampling: [T1 → T1 → AvgPool 2×2] + [Conv 2×2 stride 2 → BatchNorm]; halves H, W."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(T1(in_channels, out_channels), T1(out_channels, out_channels), nn.AvgPool2d(2, 2))
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 2, stride=2, bias=True),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.shortcut(x)


class T4(nn.Sequential):
    """Upsampling: T1 → T1 → ConvTranspose 3×3 stride 2 (exactly 2× size) → T1 → T1."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            T1(in_channels, out_channels),
            T1(out_channels, out_channels),
            nn.ConvTranspose2d(out_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=True),
            T1(out_channels, out_channels),
            T1(out_channels, out_channels),
        )


#: The output heads SVBRNet can have; the first is the default.
HEADS: tuple[str, ...] = ("residual", "sigmoid")


class T5(nn.Sequential):
    """The paper's head: Conv 3×3 (same) to 3 channels → sigmoid."""

    def __init__(self, in_channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, 3, 3, padding=1, bias=True), nn.Sigmoid())


class ResidualHead(nn.Sequential):
    """Conv 3×3 (same) to 3 channels, zero-initialised: the correction added to the input image.

    Starting at exactly zero makes the untrained network the identity, so
    training starts from the photo's own colours and every step goes into
    deblurring (the sigmoid head must first learn to reproduce the image).
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, 3, 3, padding=1, bias=True))
        nn.init.zeros_(self[0].weight)
        nn.init.zeros_(self[0].bias)


class MapBranch(nn.Module):
    """Branch B: encodes the blur map; returns the features branch X consumes."""

    def __init__(self) -> None:
        super().__init__()
        self.b1 = T1(1, 8)
        self.b2 = T2(8)
        self.b3 = T3(8, 16)
        self.b4 = T1(16, 16)
        self.b5 = T2(16)
        self.b6 = T3(16, 32)
        self.b7_to_b10 = nn.Sequential(T1(32, 32), T1(32, 32), T2(32), T2(32))
        self.b11 = T4(32, 16)
        self.b12_conv = T1(16, 16)
        self.b13 = T2(32)
        self.b14 = T4(32, 32)
        self.b15_conv = T1(32, 32)
        self.b16 = T2(40)

    def forward(self, blur_map: Tensor) -> dict[str, Tensor]:
        b1 = self.b1(blur_map)
        b2 = self.b2(b1)
        b4 = self.b4(self.b3(b2))
        b5 = self.b5(b4)
        b10 = self.b7_to_b10(self.b6(b5))
        b12 = torch.cat([self.b12_conv(self.b11(b10)), b4], dim=1)
        b13 = self.b13(b12)
        b15 = torch.cat([self.b15_conv(self.b14(b13)), b1], dim=1)
        return {"b2": b2, "b5": b5, "b10": b10, "b13": b13, "b16": self.b16(b15)}


class ImageBranch(nn.Module):
    """Branch X: restores the image, fed branch B's features at every scale."""

    def __init__(self, head: str = HEADS[0]) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
        self.head = head
        self.x1 = T1(3, 8)
        self.x2_res = T2(8)
        self.x3 = T1(16, 8)
        self.x4 = T3(8, 16)
        self.x5 = T1(16, 16)
        self.x6_res = T2(16)
        self.x7 = T1(32, 16)
        self.x8 = T3(16, 32)
        self.x9_to_x11 = nn.Sequential(T1(32, 32), T1(32, 32), T2(32))
        self.x12_res = T2(32)
        self.x13 = T1(64, 32)
        self.x14 = T4(32, 16)
        self.x15 = T1(16, 16)
        self.x16_res = T2(16)
        self.x17_conv = T1(48, 16)
        self.x18 = T1(32, 32)
        self.x19 = T4(32, 8)
        self.x20_conv = T1(8, 8)
        self.x21 = T1(16, 8)
        self.x22_res = T2(8)
        self.x23 = T1(48, 8)
        self.out = ResidualHead(8) if head == "residual" else T5(8)

    def forward(self, image: Tensor, b: dict[str, Tensor]) -> Tensor:
        out = self.out(self._features(image, b))
        if self.head == "residual":
            return torch.clamp(image + out, 0.0, 1.0)
        return out

    def correction(self, image: Tensor, b: dict[str, Tensor]) -> Tensor:
        """The residual head's conv output (what ``forward`` adds to the image)."""
        return self.out(self._features(image, b))

    def _features(self, image: Tensor, b: dict[str, Tensor]) -> Tensor:
        """x23: the 8-channel features the output head reads."""
        x2 = torch.cat([self.x2_res(self.x1(image)), b["b2"]], dim=1)
        x3 = self.x3(x2)
        x5 = self.x5(self.x4(x3))
        x6 = torch.cat([self.x6_res(x5), b["b5"]], dim=1)
        x7 = self.x7(x6)
        x11 = self.x9_to_x11(self.x8(x7))
        x12 = torch.cat([self.x12_res(x11), b["b10"]], dim=1)
        x15 = self.x15(self.x14(self.x13(x12)))
        x16 = torch.cat([self.x16_res(x15), b["b13"]], dim=1)
        x17 = torch.cat([x7, self.x17_conv(x16)], dim=1)
        x19 = self.x19(self.x18(x17))
        x20 = torch.cat([x3, self.x20_conv(x19)], dim=1)
        x22 = torch.cat([self.x22_res(self.x21(x20)), b["b16"]], dim=1)
        return self.x23(x22)


class SVBRNet(nn.Module):
    """Non-blind deblurring network for spatially varying defocus blur (362,099 parameters).

    Args:
        head: ``"residual"`` (default, shipped) or ``"sigmoid"`` (the paper's); see the module docstring.
    """

    def __init__(self, head: str = HEADS[0]) -> None:
        super().__init__()
        self.map_branch = MapBranch()
        self.image_branch = ImageBranch(head)

    @property
    def head(self) -> str:
        return self.image_branch.head

    def forward(self, image: Tensor, blur_map: Tensor) -> Tensor:
        """Deblur.

        Args:
            image: N×3×H×W float RGB in [0, 1].
            blur_map: N×1×H×W float, radius (px) / MAX_RADIUS_PX in [0, 1].

        Returns:
            N×3×H×W sharp image in [0, 1].
        """
        check_input_shapes(image.shape, blur_map.shape)
        return self.image_branch(image, self.map_branch(blur_map))

    def correction(self, image: Tensor, blur_map: Tensor) -> Tensor:
        """The residual head's output before it is added to the image: N×3×H×W, unbounded.

        ``forward`` is ``clip(image + correction, 0, 1)``. A half-precision
        runner computes the correction in float16 and adds it to the float32
        image, so the skip path stays exact (as in the exported FP16/INT8 graphs).
        """
        if self.head != "residual":
            raise ValueError(f"correction() needs the residual head; this network has the {self.head} head")
        check_input_shapes(image.shape, blur_map.shape)
        return self.image_branch.correction(image, self.map_branch(blur_map))


def check_input_shapes(image_shape: tuple[int, ...], map_shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless the shapes follow SPEC §1."""
    if len(image_shape) != 4 or image_shape[1] != 3:
        raise ValueError(f"image must be N×3×H×W, got shape {tuple(image_shape)}")
    n, _, height, width = image_shape
    if tuple(map_shape) != (n, 1, height, width):
        raise ValueError(f"blur_map must be N×1×H×W = {(n, 1, height, width)}, got {tuple(map_shape)}")
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ValueError(
            f"H and W must be multiples of {SIZE_MULTIPLE}, got {height}×{width}: pad the input "
            "(runtime.Deblurrer does this for you)"
        )


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (conv weights and biases, BatchNorm scale and shift)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_checkpoint(path: Path | str, model: nn.Module, metadata: dict[str, Any], **state: Any) -> None:
    """Save weights, JSON-serialisable metadata and any extra training state."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(model, SVBRNet):
        metadata = {**metadata, "head": model.head}
    payload = {"model": model.state_dict(), "metadata": json.loads(json.dumps(metadata)), **state}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: an interrupted save never leaves a torn checkpoint


def load_checkpoint(path: Path | str, map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return torch.load(path, map_location=map_location, weights_only=False)


def head_of(metadata: dict[str, Any]) -> str:
    """The output head a checkpoint's metadata records (checkpoints from before the head existed: sigmoid)."""
    return metadata.get("head", "sigmoid")


def load_model(path: Path | str) -> tuple[SVBRNet, dict[str, Any]]:
    """Eval-mode network (with the head its metadata records) and metadata from a checkpoint file."""
    checkpoint = load_checkpoint(path)
    model = SVBRNet(head_of(checkpoint.get("metadata", {})))
    model.load_state_dict(checkpoint["model"])
    return model.eval(), checkpoint.get("metadata", {})


def load_pretrained() -> SVBRNet:
    """The bundled eval-mode network; its metadata is on ``model.metadata``."""
    if not PRETRAINED_PATH.is_file():
        raise FileNotFoundError(f"bundled weights missing: {PRETRAINED_PATH}")
    model, metadata = load_model(PRETRAINED_PATH)
    model.metadata = metadata
    return model
