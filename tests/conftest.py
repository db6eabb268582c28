"""Shared fixtures: a randomly initialised SVBR-Net and its ONNX export.

The trained weights are not needed for contract tests: any weights exercise
export, BatchNorm folding, parity and tiling. BatchNorm statistics are
randomised (so folding changes the weights measurably) and the last layer is
randomised (the residual head starts at zero, i.e. the identity) and scaled so
outputs differ clearly from the input, which would make parity and tiling
comparisons too easy to pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def make_random_svbrnet(seed: int = 0, head: str = "residual"):
    """An eval-mode ``SVBRNet`` with random weights and random BatchNorm statistics."""
    import torch

    from training.model import SVBRNet

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SVBRNet(head).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                channels = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(channels, generator=generator))
                module.running_var.copy_(0.5 + 1.5 * torch.rand(channels, generator=generator))
                module.weight.copy_(0.5 + torch.rand(channels, generator=generator))
                module.bias.copy_(0.1 * torch.randn(channels, generator=generator))
        head_weight = model.image_branch.out[0].weight
        if head == "residual":
            head_weight.copy_(0.05 * torch.randn(head_weight.shape, generator=generator))
        else:
            head_weight.mul_(15.0)
    return model


@pytest.fixture(scope="session")
def random_svbrnet():
    """The randomly initialised eval-mode PyTorch network (do not modify it)."""
    return make_random_svbrnet(seed=0)


@pytest.fixture(scope="session")
def random_onnx_model(random_svbrnet, tmp_path_factory) -> Path:
    """``random_svbrnet`` exported with the default exporter and opset: a valid runtime model."""
    from export.onnx_export import export_onnx

    return export_onnx(random_svbrnet, tmp_path_factory.mktemp("models") / "svbrnet_random.onnx")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: one thread avoids OpenMP threads stalling each other on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
