"""The preprocessing spec: exact intensity maxima, channels, sizes, and refusing mixed specs."""

import pytest
import torch

from lightning_dims.data.spec import PreprocessingSpec, SpecMismatchError, preprocess, require_same_spec


def test_max255_is_exactly_255_for_every_image():
    images = torch.rand(300, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 7.3
    out = preprocess(images, PreprocessingSpec(size=224))
    assert out.shape == (300, 1, 224, 224) and out.dtype == torch.float32
    assert torch.equal(out.flatten(1).amax(1), torch.full((300,), 255.0))  # no 255.00003 that attacks reject
    assert out.min() >= 0


def test_blank_images_stay_blank_and_finite():
    out = preprocess(torch.zeros(2, 8, 8), PreprocessingSpec(size=8))
    assert torch.equal(out, torch.zeros(2, 1, 8, 8))


def test_max1_and_raw_and_native_size():
    image = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert torch.equal(preprocess(image, PreprocessingSpec(size=None, intensity="max1"))[0, 0], image[0] / 4)
    assert torch.equal(preprocess(image, PreprocessingSpec(size=None, intensity="raw"))[0, 0], image[0])


def test_channels_gray_to_rgb_and_rgb_to_gray():
    gray = torch.rand(4, 1, 6, 6)
    rgb = preprocess(gray, PreprocessingSpec(size=None, channels=3, intensity="raw"))
    assert rgb.shape == (4, 3, 6, 6) and torch.equal(rgb[:, 0], rgb[:, 2])
    channels_last = torch.rand(4, 6, 6, 3)
    back = preprocess(channels_last, PreprocessingSpec(size=None, channels=1, intensity="raw"))
    expected = (channels_last * torch.tensor([0.2989, 0.587, 0.114])).sum(-1)
    assert torch.allclose(back[:, 0], expected)


def test_spec_key_and_comparison_refusal():
    paper = PreprocessingSpec.paper()
    assert paper.key() == "224px-1ch-max255"
    require_same_spec(paper, PreprocessingSpec(size=224, channels=1, intensity="max255"))
    with pytest.raises(SpecMismatchError, match="32px-1ch-max255"):
        require_same_spec(paper, PreprocessingSpec(size=32))
    with pytest.raises(ValueError):
        PreprocessingSpec(size=1)
