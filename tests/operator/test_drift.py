from byoc_operator.drift import contains


def test_defaults_added_by_the_api_server_are_not_drift() -> None:
    desired = {"spec": {"containers": [{"name": "w", "image": "a"}]}}
    live = {
        "spec": {
            "containers": [{"name": "w", "image": "a", "terminationMessagePath": "/dev/x"}],
            "dnsPolicy": "ClusterFirst",
        }
    }
    assert contains(live, desired)


def test_changed_value_or_missing_field_or_extra_list_item_is_drift() -> None:
    desired = {"spec": {"replicas": 2, "containers": [{"image": "a"}]}}
    assert not contains({"spec": {"replicas": 3, "containers": [{"image": "a"}]}}, desired)
    assert not contains({"spec": {"containers": [{"image": "a"}]}}, desired)
    assert not contains({"spec": {"replicas": 2, "containers": [{"image": "a"}, {"image": "b"}]}}, desired)


def test_int_or_string_values_compare_by_text() -> None:
    assert contains({"maxSurge": "0"}, {"maxSurge": 0})
    assert not contains({"maxSurge": "1"}, {"maxSurge": 0})


def test_server_owned_metadata_is_ignored() -> None:
    assert contains({"metadata": {"name": "x"}}, {"metadata": {"name": "x", "resourceVersion": "9"}})


def test_a_live_value_of_another_shape_is_drift() -> None:
    assert not contains("x", {"a": 1}) and not contains(None, {"a": 1})
    assert not contains({"a": 1}, [{"a": 1}])
    # Only an int and its text compare by text: a null is not the text "None", either way round.
    assert not contains("None", None) and not contains(None, "None")
