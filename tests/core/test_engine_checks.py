"""Bad layer values in an engine description are named (file, layer, key, what is expected)
instead of a TypeError, "invalid literal for int()" or a silently wrong number downstream."""

from __future__ import annotations

import re

import pytest

from power_modelling.core.engines import describe_layers


def _layer(**extra: object) -> dict:
    layer = {
        "Name": "conv-[/conv1/convolution]",
        "LayerType": "Conv2d",
        "Inputs": [{"Dimensions": [1, 3, 8, 8], "Format/Datatype": "FP16"}],
        "Outputs": [{"Dimensions": [1, 4, 8, 8], "Format/Datatype": "FP16"}],
        "Kernel": [3, 3],
    }
    layer.update(extra)
    return layer


def _error(layer: dict) -> str:
    with pytest.raises(ValueError) as raised:
        describe_layers({"Layers": [_layer(Name="ok"), layer]}, "data/01_raw/predict/net.json")
    return str(raised.value)


@pytest.mark.parametrize("key", ["Groups", "Count", "OutMaps", "InFeatures"])
@pytest.mark.parametrize("value", [[1, 2], "two", "2", -5, 0, 2.5, True, {"n": 1}])
def test_counts_must_be_positive_integers(key: str, value: object) -> None:
    message = _error(_layer(**{key: value}))
    assert message == (
        "data/01_raw/predict/net.json: layer 'conv-[/conv1/convolution]': "
        f"{key} must be a positive integer (1, 2, ...), got {value!r}"
    )


@pytest.mark.parametrize("tensors", ["Inputs", "Outputs"])
@pytest.mark.parametrize("dims", [[], [1, 0, 8, 8], [1, -1, 8, 8], [-3]])
def test_dimensions_must_be_positive(tensors: str, dims: list[int]) -> None:
    message = _error(_layer(**{tensors: [{"Dimensions": dims}]}))
    assert message.startswith(
        "data/01_raw/predict/net.json: layer 'conv-[/conv1/convolution]': "
        f"{tensors}[0].Dimensions must be a non-empty list of positive integers, got {dims!r}"
    )


@pytest.mark.parametrize("dims", [["1", 3], [1, 2.5], [1, True], "1x3", [[1, 3]]])
def test_dimensions_must_be_integers(dims: object) -> None:
    message = _error(_layer(Inputs=[{"Dimensions": dims}]))
    assert re.search(r"'conv-\[/conv1/convolution\]': Inputs\[0\]\.Dimensions must be", message)


def test_kernel_text_is_named() -> None:
    message = _error(_layer(Kernel="3x3"))
    assert message.endswith("Kernel must be a list of integers, got '3x3'")


def test_valid_counts_absent_null_and_integral_floats() -> None:
    frame = describe_layers(
        {
            "Layers": [
                _layer(Groups=2, Count=3, OutMaps=4),
                _layer(Groups=None, Count=None, InFeatures=None),
                _layer(Groups=2.0, Count=5.0, Inputs=[{"Dimensions": [1.0, 3, 8, 8]}]),
            ]
        },
        "net.json",
    )
    assert frame["groups"].tolist() == [2, 1, 2]
    assert frame["count"].tolist() == [3, 1, 5]
    assert frame["out_maps"].tolist()[0] == 4
    assert frame["input_dims"].tolist()[2] == [1, 3, 8, 8]


def test_zero_padding_is_still_valid() -> None:
    frame = describe_layers({"Layers": [_layer(PrePadding=[0, 0])]}, "net.json")
    assert frame["pre_padding"].tolist() == [[0, 0]]
