"""Face-centred crops (fercore.grids.cells): one framing for the set, padding past the canvas recorded."""

from __future__ import annotations

import numpy as np
import pytest

from fercore.grids import cells as K


def picture(height=200, width=300) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(20, 235, (height, width, 3), dtype=np.uint8)


def test_face_crop_box_puts_the_face_where_the_framing_says():
    frame = K.framing("fer2013")
    x0, y0, x1, y1 = K.face_crop_box((100, 50, 181, 150), frame)
    side = x1 - x0
    assert side == y1 - y0 == round(81 / 0.81)
    assert abs((100 + 181) / 2 - (x0 + frame.box_cx * side)) <= 1 and abs(100 - (y0 + frame.box_cy * side)) <= 1
    with pytest.raises(ValueError, match="framing must be one of"):
        K.framing("tight")


def test_crop_inside_the_canvas_is_the_cell_crop():
    rgb = picture()
    face, valid, pad = K.crop_padded(rgb, (10, 20, 110, 120), 64)
    assert valid == (0, 0, 64, 64) and pad == 0.0
    assert np.array_equal(np.asarray(face), np.asarray(K.crop_resized(rgb, (10, 20, 110, 120), 64)))


def test_crop_past_the_canvas_is_padded_and_the_padding_recorded():
    rgb = picture()
    face, valid, pad = K.crop_padded(rgb, (-50, 150, 150, 350), 100)  # 25 % left, 75 % below the canvas... of 200 px
    array = np.asarray(face)
    assert pad == pytest.approx(1 - (150 * 50) / (200 * 200))
    assert valid == (25, 0, 100, 25)
    assert (array[29:, :] == K.PAD_VALUE).all() and (array[:, :21] == K.PAD_VALUE).all()  # Lanczos blends 3 px at the edge
    assert array[:24, 26:].std() > 20  # the picture where it is valid
