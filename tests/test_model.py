"""SVBR-Net matches SPEC §2: parameter count, I/O contract, receptive field; both output heads."""

import pytest
import torch

from runtime.constants import RECEPTIVE_FIELD_PX
from training.model import HEADS, SVBRNet, count_parameters, load_model, save_checkpoint


@pytest.mark.parametrize("head", HEADS)
def test_parameter_count_matches_spec(head):
    assert count_parameters(SVBRNet(head)) == 362_099


def test_heads_share_state_dict_keys():
    assert SVBRNet("residual").state_dict().keys() == SVBRNet("sigmoid").state_dict().keys()


def test_default_head_is_residual_and_unknown_head_is_rejected():
    assert SVBRNet().head == "residual" == HEADS[0]
    with pytest.raises(ValueError, match="head must be one of"):
        SVBRNet("tanh")


def test_untrained_residual_network_is_exactly_the_identity():
    torch.manual_seed(0)
    model = SVBRNet("residual").train()  # BatchNorm in training mode too: the zero head hides it
    image = torch.rand(2, 3, 36, 44)
    assert torch.equal(model(image, torch.rand(2, 1, 36, 44)), image)


def test_residual_head_adds_a_clipped_correction():
    torch.manual_seed(0)
    model = SVBRNet("residual").eval()
    with torch.no_grad():
        model.image_branch.out[0].bias.copy_(torch.tensor([0.5, -0.5, 0.0]))
        image = torch.rand(1, 3, 16, 16)
        out = model(image, torch.rand(1, 1, 16, 16))
    torch.testing.assert_close(out[0, 0], (image[0, 0] + 0.5).clamp(0, 1))
    torch.testing.assert_close(out[0, 1], (image[0, 1] - 0.5).clamp(0, 1))
    torch.testing.assert_close(out[0, 2], image[0, 2])


def test_output_shape_and_range():
    torch.manual_seed(0)
    model = SVBRNet("sigmoid").eval()
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


@pytest.mark.parametrize("head", HEADS)
def test_receptive_field_by_gradient(head):
    """The set of input pixels with a non-zero gradient on one output pixel is 168 px wide."""
    torch.manual_seed(0)
    model = SVBRNet(head).eval().double()
    if head == "residual":  # it starts at zero; small, so that the output clip stays inactive
        torch.nn.init.normal_(model.image_branch.out[0].weight, std=1e-4)
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


@pytest.mark.parametrize("head", HEADS)
def test_checkpoint_round_trip_keeps_the_head(tmp_path, head):
    torch.manual_seed(0)
    model = SVBRNet(head).eval()
    torch.nn.init.normal_(model.image_branch.out[0].weight, std=0.1)
    save_checkpoint(tmp_path / "m.pt", model, {"note": "test"})
    loaded, metadata = load_model(tmp_path / "m.pt")
    assert metadata == {"note": "test", "head": head}
    assert loaded.head == head
    x, b = torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x, b), loaded(x, b))


def test_checkpoint_without_a_head_is_the_papers(tmp_path):
    """Checkpoints written before the residual head existed hold the sigmoid head."""
    model = SVBRNet("sigmoid").eval()
    torch.save({"model": model.state_dict(), "metadata": {}}, tmp_path / "old.pt")
    loaded, _ = load_model(tmp_path / "old.pt")
    assert loaded.head == "sigmoid"
