"""Message <-> array conversions, without ROS: plain objects with the message fields stand in
for sensor_msgs/Image and geometry_msgs/Twist (the functions read fields only)."""
from types import SimpleNamespace

import numpy as np
import pytest

from genie_robot.errors import InputError
from ros_nodes.conversions import TWIST_LIMIT, image_to_rgb, to_image_fields, twist_to_command

FRAME = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)


def image(**fields):
    return SimpleNamespace(**fields)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
@pytest.mark.parametrize("step", [None, 7 * 3, 7 * 3 + 5])  # tight and padded rows
def test_colour_images_round_trip(encoding, step):
    fields = to_image_fields(FRAME, encoding, step)
    assert fields["step"] == (step or 21) and len(fields["data"]) == fields["step"] * 5
    assert np.array_equal(image_to_rgb(image(**fields)), FRAME)


def test_bgr8_is_stored_blue_first_and_mono8_is_repeated_grey():
    fields = to_image_fields(FRAME, "bgr8")
    assert list(fields["data"][:3]) == FRAME[0, 0, ::-1].tolist()
    ids = np.arange(35, dtype=np.uint8).reshape(5, 7)
    rgb = image_to_rgb(image(**to_image_fields(ids, "mono8", step=8)))
    assert rgb.shape == (5, 7, 3) and np.array_equal(rgb[..., 0], ids) and np.array_equal(rgb[..., 2], ids)


@pytest.mark.parametrize("big", [0, 1])
def test_mono16_honours_the_byte_order_flag(big):
    values = np.array([[0x1234, 0xFF00]], dtype=">u2" if big else "<u2")
    rgb = image_to_rgb(image(height=1, width=2, encoding="mono16", step=4, is_bigendian=big, data=values.tobytes()))
    assert rgb[0, :, 0].tolist() == [0x12, 0xFF]  # high bytes, whichever order they came in


def test_the_flag_does_not_matter_for_8_bit_encodings():
    fields = to_image_fields(FRAME)
    assert np.array_equal(image_to_rgb(image(**{**fields, "is_bigendian": 1})), FRAME)


@pytest.mark.parametrize("change, message", [
    ({"encoding": "rgba16"}, "not supported"),
    ({"step": 20}, "shorter than"),
    ({"height": 6}, r"step \* height"),
    ({"data": b"\0" * 10}, r"step \* height"),
    ({"width": 0}, "must be positive"),
])
def test_malformed_images_are_refused(change, message):
    with pytest.raises(InputError, match=message):
        image_to_rgb(image(**{**to_image_fields(FRAME), **change}))


def test_writing_refuses_what_it_cannot_encode():
    with pytest.raises(InputError, match="uint8"):
        to_image_fields(FRAME.astype(np.float32))
    with pytest.raises(InputError, match="not 'mono16'"):
        to_image_fields(FRAME, "mono16")
    with pytest.raises(InputError, match="shorter than"):
        to_image_fields(FRAME, step=3)


def twist(x=0.0, y=0.0, z=0.0, grip=0.0, roll=0.0):
    return SimpleNamespace(linear=SimpleNamespace(x=x, y=y, z=z), angular=SimpleNamespace(x=roll, y=0.0, z=grip))


def test_twist_axes_and_clamp_policy():
    assert twist_to_command(twist(0.5, -0.25, 1.0, -1.0, roll=3.0)).tolist() == [0.5, -0.25, 1.0, -1.0]
    assert twist_to_command(twist(1.5, -TWIST_LIMIT)).tolist() == [1.0, -1.0, 0.0, 0.0]  # saturated
    assert twist_to_command(twist()).dtype == np.float32


@pytest.mark.parametrize("bad", [twist(float("nan")), twist(grip=float("inf")), twist(z=TWIST_LIMIT * 1.01), twist(y=1e30)])
def test_nan_and_huge_twists_are_refused(bad):
    with pytest.raises(InputError, match="NaN or inf|exceeds"):
        twist_to_command(bad)


def test_the_real_message_classes_work_too():
    from sensor_msgs.msg import Image

    msg = Image(**to_image_fields(FRAME, "bgr8", step=24))
    assert np.array_equal(image_to_rgb(msg), FRAME)
