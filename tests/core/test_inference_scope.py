from boxloop.inference_scope import images_to_infer


def test_labelled_images_are_not_inferred_again_except_for_validation():
    items = [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    assert images_to_infer(items, labelled={"a", "b", "c"}, validation={"b"}) == [2, 4]
    assert images_to_infer(items, labelled=set(), validation=set()) == [1, 2, 3, 4]
