"""SVBR-Net matches SPEC §2: parameter count, I/O contract, receptive field."""

import pytest
import torch

from runtime.constants import RECEPTIVE_FIELD_PX
from training.model import SVBRNet, count_parameters, load_model, save_checkpoint


def test_parameter_count_matches_spec():
    assert count_parameters(SVBRNet()) == 362_099


def test_output_shape_and_range():
    torch.manual_seed(0)
    model = SVBRNet().eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 36, 44), torch.rand(2, 1, 36, 44))
    assert out.shape == (2, 3, 36, 44)
    assert out.dtype == torch.float32
    assert float(out.min()) > 0.0 and float(out.max()) < 1.0


@pytest.mark.parametrize("height, width", [(34, 40), (40, 42), (30, 30)])
def test_size_not_multiple_of_four_is_rejected(height, width):
    with pytest.raises(ValueError, match="multiples of 4"):
        SVBRNet()(torch.rand(1, 3, height, width), torch.rand(1, 1, height, width))


def test_mismatched_map_is_rejected():
    with pytest.raises(ValueError, match="blur_map"):
        SVBRNet()(torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 36))


def test_receptive_field_by_gradient():
    """The set of input pixels with a non-zero gradient on one output pixel is 168 px wide."""
    torch.manual_seed(0)
    model = SVBRNet().eval().double()
    size = 256
    widths = []
    for centre in (128, 129, 130, 131):  # every alignment with the two 2x downsamplings
        image = torch.rand(1, 3, size, size, dtype=torch.double, requires_grad=True)
        blur_map = torch.rand(1, 1, size, size, dtype=torch.double, requires_grad=True)
        model(image, blur_map)[0, :, centre, centre].sum().backward()
        for grad in (image.grad, blur_map.grad):
            rows = (grad.abs().sum(dim=(0, 1, 3)) > 0).nonzero().flatten()
            cols = (grad.abs().sum(dim=(0, 1, 2)) > 0).nonzero().flatten()
            assert rows.min() > 0 and rows.max() < size - 1, "field must fit inside the input"
            widths += [int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)]
    assert max(widths) == RECEPTIVE_FIELD_PX
    assert min(widths) >= RECEPTIVE_FIELD_PX - 4


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SVBRNet().eval()
    save_checkpoint(tmp_path / "m.pt", model, {"note": "test"})
    loaded, metadata = load_model(tmp_path / "m.pt")
    assert metadata == {"note": "test"}
    x, b = torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x, b), loaded(x, b))
