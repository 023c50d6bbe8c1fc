"""Indicator specs: inputs fed from any bar field, one-line errors naming the fix."""

from __future__ import annotations

import pytest

from tickhawk.config import ConfigError, parse_config
from tickhawk.indicators.spec import IndicatorError, IndicatorSpec, parse_spec, resolve
from tickhawk.indicators.streams import IndicatorSet
from tickhawk.model import Bar


def test_an_input_can_read_another_bar_field() -> None:
    spec = parse_spec("hi=EMA(timeperiod=3,price=high)")
    assert spec == IndicatorSpec("hi", "EMA", {"timeperiod": 3.0}, {"price": ("high",)})
    assert resolve(spec).fields == ("high",)
    indicators = IndicatorSet([spec])
    for i in range(3):
        indicators.update(Bar("X", "1m", i, 1.0, 10.0 + i, 0.5, 1.0, 1.0, 1))
    assert indicators.values["hi"] == pytest.approx(11.0)


def test_list_inputs_from_config_and_their_errors() -> None:
    config = parse_config(
        {"indicators": {"1m": {"x": {"fn": "ATR", "prices": ["open", "low", "close"]}}}}
    )
    assert config.indicators["1m"]["x"]["prices"] == ["open", "low", "close"]
    with pytest.raises(ConfigError, match=r"input 'prices' takes 3 field\(s\), e.g. prices = "):
        parse_config({"indicators": {"1m": {"x": {"fn": "ATR", "prices": ["high"]}}}})
    with pytest.raises(ConfigError, match=r"price = 'hlc3' is not a bar field; use one of open"):
        parse_config({"indicators": {"1m": {"x": {"fn": "EMA", "price": "hlc3"}}}})
    with pytest.raises(ConfigError, match=r"x = True: use a number \(parameter\) or a bar field"):
        parse_config({"indicators": {"1m": {"x": {"fn": "EMA", "x": True}}}})


def test_mavp_needs_its_periods_input_named() -> None:
    with pytest.raises(IndicatorError, match=r"MAVP reads input 'periods', which bars do not have"):
        resolve(IndicatorSpec("m", "MAVP"))
    assert resolve(parse_spec("m=MAVP(periods=trades)")).fields == ("close", "trades")


def test_unknown_keys_list_parameters_and_inputs() -> None:
    with pytest.raises(IndicatorError, match=r"allowed: timeperiod=30; inputs: price=\"close\""):
        resolve(IndicatorSpec("x", "EMA", {"span": 3.0}))
    with pytest.raises(IndicatorError, match="key=number or input=field"):
        parse_spec("EMA(price=hl2)")
