from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from skyaudio_cli.errors import InputError
from skyaudio_cli.media.image import load_image, resize_center_crop, resize_center_crop_array

EXIF_ORIENTATION_TAG = 0x0112
# EXIF orientation 6: the stored pixels must be turned 90 degrees clockwise to display upright.
ORIENTATION_ROTATE_90_CW = 6


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module")
def landscape(astronaut: Image.Image) -> Image.Image:
    """Not square, so a lost rotation would show up as swapped width and height."""
    return astronaut.crop((0, 64, 512, 448))  # 512 x 384


@pytest.mark.parametrize(("suffix", "min_psnr"), [("png", None), ("jpg", 30.0), ("webp", 30.0)])
def test_formats_load_as_rgb(tmp_path, landscape, suffix, min_psnr):
    path = tmp_path / f"portrait.{suffix}"
    landscape.save(path, quality=95)  # PNG ignores quality

    image = load_image(path)

    assert image.mode == "RGB" and image.size == (512, 384)
    if min_psnr is None:
        np.testing.assert_array_equal(np.asarray(image), np.asarray(landscape))
    else:
        assert psnr(np.asarray(image), np.asarray(landscape)) > min_psnr


def test_exif_orientation_is_applied(tmp_path, landscape):
    stored = landscape.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise: as a phone stores it
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = ORIENTATION_ROTATE_90_CW
    path = tmp_path / "phone.jpg"
    stored.save(path, quality=95, exif=exif)
    assert Image.open(path).size == (384, 512)

    image = load_image(path)

    assert image.size == (512, 384)
    assert psnr(np.asarray(image), np.asarray(landscape)) > 30.0


def test_transparency_is_composited_on_white(tmp_path, landscape):
    rgba = landscape.convert("RGBA")
    alpha = np.full((384, 512), 255, np.uint8)
    alpha[:, :128] = 0  # fully transparent, over black pixels
    alpha[:, 128:256] = 128  # half transparent
    pixels = np.asarray(rgba).copy()
    pixels[:, :128, :3] = 0
    pixels[..., 3] = alpha
    path = tmp_path / "cutout.png"
    Image.fromarray(pixels, "RGBA").save(path)

    image = np.asarray(load_image(path)).astype(np.int16)
    original = np.asarray(landscape).astype(np.int16)

    assert (image[:, :128] == 255).all()
    expected_half = original[:, 128:256] * 128 / 255 + 255 * (1 - 128 / 255)
    assert np.abs(image[:, 128:256] - expected_half).max() <= 1
    np.testing.assert_array_equal(image[:, 256:], original[:, 256:])


def test_grayscale_becomes_rgb(tmp_path, landscape):
    path = tmp_path / "gray.png"
    landscape.convert("L").save(path)
    image = np.asarray(load_image(path))
    assert image.shape == (384, 512, 3)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def _bad_images(tmp_path, landscape) -> dict:
    text = tmp_path / "face.png"
    text.write_text("not an image at all\n")
    good = tmp_path / "good.jpg"
    landscape.save(good, quality=95)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:2000])
    return {"missing": tmp_path / "nope.png", "directory": tmp_path, "text": text, "truncated": truncated}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "not found"),
        ("directory", "directory"),
        ("text", "not an image"),
        ("truncated", "corrupt or truncated"),
    ],
)
def test_bad_images_raise_input_error_naming_the_file(tmp_path, landscape, case, expected):
    path = _bad_images(tmp_path, landscape)[case]
    with pytest.raises(InputError, match=expected) as raised:
        load_image(path)
    assert path.name in str(raised.value)


def _striped_source() -> Image.Image:
    """400x200: blue and green outside the centred 200x200 square, grey inside with a red centre line."""
    pixels = np.full((200, 400, 3), 128, np.uint8)
    pixels[:, :90] = (0, 0, 255)
    pixels[:, 310:] = (0, 255, 0)
    pixels[:, 196:204] = (255, 0, 0)
    return Image.fromarray(pixels)


def test_resize_center_crop_covers_then_crops_the_centre():
    out = np.asarray(resize_center_crop(_striped_source(), 100, 100)).astype(np.int16)

    assert out.shape == (100, 100, 3)
    # The sides fell outside the centred square: no blue or green survives.
    assert out[..., 2].max() < 140 and out[..., 1].max() < 140
    # Uniform scale 1/2: the 8-px red line at the source centre is a 4-px line at the output centre.
    red_columns = np.flatnonzero(out[50, :, 0] > 200)
    assert red_columns.min() >= 47 and red_columns.max() <= 52 and len(red_columns) >= 3


@pytest.mark.parametrize(("width", "height"), [(832, 480), (480, 832), (640, 640), (720, 1280), (33, 17)])
def test_resize_center_crop_is_the_releases_resize_and_centercrop(astronaut, width, height):
    # SkyReels-V3 / InfiniteTalk: scale = max(th / h, tw / w), ceil(scale * side), PIL bilinear,
    # then torchvision's centre crop: top = int(round((H - th) / 2.0)), left likewise.
    source = astronaut.resize((400, 300))
    scale = max(height / source.height, width / source.width)
    resized = np.asarray(
        source.resize((math.ceil(scale * source.width), math.ceil(scale * source.height)), Image.BILINEAR)
    )
    top = int(round((resized.shape[0] - height) / 2.0))
    left = int(round((resized.shape[1] - width) / 2.0))
    expected = resized[top : top + height, left : left + width]
    np.testing.assert_array_equal(np.asarray(resize_center_crop(source, width, height)), expected)


@pytest.mark.parametrize(("width", "height"), [(832, 480), (480, 832), (640, 640), (33, 17)])
def test_resize_center_crop_exact_size(astronaut, width, height):
    assert resize_center_crop(astronaut, width, height).size == (width, height)


def test_array_variant_matches_image_variant(astronaut):
    frame = np.asarray(astronaut)
    expected = np.asarray(resize_center_crop(astronaut, 320, 192))
    np.testing.assert_array_equal(resize_center_crop_array(frame, 320, 192), expected)
    with pytest.raises(ValueError):
        resize_center_crop_array(frame[..., 0], 320, 192)
