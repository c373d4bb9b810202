import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from conftest import pattern_image
from fercore import images as I


@pytest.mark.parametrize("size", [224, 260, 64])
def test_preprocess_equals_torchvision_pipeline(size):
    image = pattern_image(300, 200)
    reference = T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize(I.IMAGENET_MEAN, I.IMAGENET_STD)])
    ours = I.Preprocess(size)(image)
    assert ours.shape == (3, size, size)
    assert torch.equal(ours, reference(image))


def test_preprocess_for_arch_uses_trained_sizes():
    assert I.preprocess_for("tf_efficientnet_b0_ns").image_size == 224
    assert I.preprocess_for("tf_efficientnet_b2_ns").image_size == 260


def test_preprocess_refuses_arrays():
    with pytest.raises(TypeError, match="channel_order"):
        I.Preprocess(224)(np.zeros((10, 10, 3), np.uint8))


def test_grayscale_is_replicated():
    grey = Image.fromarray(np.full((8, 8), 77, np.uint8), mode="L")
    rgb = np.asarray(I.to_rgb(grey))
    assert rgb.shape == (8, 8, 3) and (rgb == 77).all()


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(I.load_rgb(path))
    assert rgb[0, :, 0].tolist() == [0, 128, 255]


def test_rgba_is_composited_over_mean_grey():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    out = np.asarray(I.to_rgb(Image.fromarray(rgba, mode="RGBA")))
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[1, 1]) == I.ALPHA_BACKGROUND


def test_cmyk_converts(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path)  # pure red in CMYK
    r, g, b = np.asarray(I.load_rgb(path))[4, 4]
    assert r > 200 and g < 60 and b < 60


def test_from_array_needs_channel_order():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB order
    assert np.asarray(I.from_array(rgb, channel_order="RGB"))[0, 0].tolist() == [200, 0, 0]
    assert np.asarray(I.from_array(rgb, channel_order="BGR"))[0, 0].tolist() == [0, 0, 200]
    with pytest.raises(TypeError):
        I.from_array(rgb.astype(np.float32), channel_order="RGB")


def test_augment_transform_shape_and_normalisation():
    torch.manual_seed(0)
    out = I.augment_transform(48)(pattern_image(100, 100))
    assert out.shape == (3, 48, 48)
    restored = I.denormalize(out)
    assert restored.min() >= 0 and restored.max() <= 1
