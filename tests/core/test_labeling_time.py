import pytest

from boxloop.labeling_time import expected_label_seconds


def test_one_clear_product_takes_about_ten_seconds():
    assert expected_label_seconds(1, prefilled=False, cluttered=False) == pytest.approx(10.0)


def test_cluttered_multi_product_image_takes_about_thirty_seconds():
    assert expected_label_seconds(4, prefilled=False, cluttered=True) == pytest.approx(30.0)


@pytest.mark.parametrize(("n_objects", "cluttered"), [(0, False), (1, False), (3, True), (5, True)])
def test_prefilled_boxes_halve_the_time(n_objects, cluttered):
    drawn = expected_label_seconds(n_objects, prefilled=False, cluttered=cluttered)
    assert expected_label_seconds(n_objects, prefilled=True, cluttered=cluttered) == pytest.approx(drawn / 2)


def test_time_grows_with_objects_and_clutter():
    clear = [expected_label_seconds(n, prefilled=False, cluttered=False) for n in range(6)]
    cluttered = [expected_label_seconds(n, prefilled=False, cluttered=True) for n in range(6)]
    assert clear == sorted(clear) and len(set(clear)) == 6
    assert all(c >= p for c, p in zip(cluttered, clear, strict=True))
    assert cluttered[3] > clear[3]


def test_negative_object_count_is_rejected():
    with pytest.raises(ValueError, match="n_objects"):
        expected_label_seconds(-1, prefilled=False, cluttered=False)


def test_the_prefill_factor_is_a_parameter():
    drawn = expected_label_seconds(3, prefilled=False, cluttered=True)
    assert expected_label_seconds(3, prefilled=True, cluttered=True, prefill_factor=0.3) == pytest.approx(0.3 * drawn)
    assert expected_label_seconds(3, prefilled=False, cluttered=True, prefill_factor=0.3) == pytest.approx(drawn)
    with pytest.raises(ValueError, match="prefill_factor"):
        expected_label_seconds(3, prefilled=True, cluttered=True, prefill_factor=0.0)
