"""The forecasting request, after SageMaker's `TimeSeriesForecastingJobConfig`.

One pydantic model that the CLI, the Python API and (later) the HTTP facade all build, so
a frequency, a quantile list or a filling rule is checked by one rule with one message.
The frequency follows SageMaker's pattern exactly (`1H`, not `60min`; at most `11M`), so a
request that Autopilot refuses is refused here too.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tabpilot.errors import ConfigError, shown

# SageMaker's ForecastFrequency pattern (API_TimeSeriesForecastingJobConfig)
_FREQUENCY = re.compile(
    r"^(1Y|Y|([1-9]|1[0-1])M|M|[1-4]W|W|[1-6]D|D|([1-9]|1[0-9]|2[0-3])H|H|([1-9]|[1-5][0-9])min)$")
_PANDAS_UNIT = {"Y": "YS", "M": "MS", "W": "W", "D": "D", "H": "h", "min": "min"}
# a season in periods of one unit: a week of days, a day of hours, a year of months or weeks
_SEASON_OF_UNIT = {"Y": 1, "M": 12, "W": 52, "D": 7, "H": 24, "min": 24 * 60}

OBJECTIVES = ("AverageWeightedQuantileLoss", "WAPE", "MASE", "MAPE", "RMSE")
AGGREGATIONS = ("sum", "avg", "first", "min", "max")
FILL_METHODS = ("zero", "value", "mean", "median", "min", "max", "none")
MAX_GROUPING_COLUMNS = 5  # TimeSeriesConfig.GroupingAttributeNames
MAX_QUANTILES = 5  # ForecastQuantiles: up to five
MAX_HORIZON = 500  # ForecastHorizon: the lesser of 500 and a quarter of the series


def parse_frequency(text: str) -> tuple[int, str]:
    """`(count, unit)` of a ForecastFrequency (`15min` -> (15, "min")), or ConfigError."""
    if not isinstance(text, str) or not _FREQUENCY.match(text):
        raise ConfigError(
            f"frequency {shown(text)} is not a ForecastFrequency; use an integer and a unit "
            "within the next larger one: 1-59min, 1-23H, 1-6D, 1-4W, 1-11M or 1Y "
            "(e.g. 1H, 15min, 1D, 1W, 1M)")
    unit = "min" if text.endswith("min") else text[-1]
    count = text[: -len(unit)]
    return int(count or 1), unit


def pandas_frequency(text: str) -> str:
    """The pandas offset alias of a ForecastFrequency (`1M` -> `1MS`, `15min` -> `15min`)."""
    count, unit = parse_frequency(text)
    return f"{count}{_PANDAS_UNIT[unit]}"


def season_length(text: str) -> int:
    """The usual seasonal period in steps of this frequency (1 when none is whole)."""
    count, unit = parse_frequency(text)
    periods = _SEASON_OF_UNIT[unit]
    return periods // count if periods % count == 0 and periods // count > 1 else 1


def check_country(code: str) -> str:
    """A HolidayConfig CountryCode the `holidays` package knows (ISO 3166 alpha-2 or -3)."""
    import holidays

    if not isinstance(code, str) or code.upper() not in holidays.list_supported_countries():
        raise ConfigError(f"holiday country {shown(code)} is not one whose holidays tabpilot "
                          "knows; use an ISO 3166 code such as US, GB, DE or FR")
    return code.upper()


def parse_quantile(value: Any) -> float:
    """0.1 from `0.1` or `p10` (Autopilot writes quantiles both ways)."""
    text = str(value).strip()
    try:
        q = float(text[1:]) / 100 if text.lower().startswith("p") else float(text)
    except ValueError:
        raise ConfigError(f"quantile {shown(value)} is not a number; use e.g. 0.1 or p10") from None
    if not 0.01 <= q <= 0.99 or abs(round(q * 100) - q * 100) > 1e-9:
        raise ConfigError(f"quantile {shown(value)} is outside 0.01-0.99 in steps of 0.01; "
                          "use e.g. 0.1,0.5,0.9")
    return round(q, 2)


class Filling(BaseModel):
    """How missing periods of the target are filled (Autopilot's Transformations.Filling).

    middlefill: a gap inside a series; backfill: periods missing at a series' end, up to
    the latest end of all series; frontfill: periods missing at its start, back to the
    earliest start. Autopilot's defaults for the target: middlefill and backfill zero,
    frontfill none (a series starts when it starts)."""

    model_config = ConfigDict(extra="forbid")

    middlefill: Literal[FILL_METHODS] = "zero"  # type: ignore[valid-type]
    backfill: Literal[FILL_METHODS] = "zero"  # type: ignore[valid-type]
    frontfill: Literal[FILL_METHODS] = "none"  # type: ignore[valid-type]
    value: float | None = None  # the constant of the "value" method

    @model_validator(mode="after")
    def _value_given(self) -> Filling:
        used = [k for k in ("frontfill", "middlefill", "backfill", "futurefill")
                if getattr(self, k, None) == "value"]
        if used and self.value is None:
            raise ConfigError(f"{used[0]} is 'value' but no fill value is given; pass "
                              "--fill-value (or <key>_value in Transformations.Filling)")
        return self


class CovariateFilling(Filling):
    """How missing values of a known-in-advance covariate are filled, on its item's grid.

    frontfill / middlefill / backfill as the target's, but `none` leaves the value missing
    (the gradient-boosting model routes missing values; the target cannot be missing).
    futurefill: values missing in the horizon at forecast time; unset (the default), a
    request that lacks one is refused, since a covariate known in advance must be given.
    Autopilot's defaults for covariates: middlefill and backfill zero, frontfill none."""

    futurefill: Literal[FILL_METHODS] | None = None  # type: ignore[valid-type]


# what a categorical covariate may be filled with: `none` (and `zero`, Autopilot's default)
# leave a value missing, which the model treats as a level of its own
CATEGORICAL_FILLS = ("none", "zero")


def check_categorical(column: str, fill: CovariateFilling, aggregation: str | None) -> None:
    """ConfigError when a categorical covariate is to be filled or aggregated by a number
    (a mean of levels means nothing)."""
    for key in ("frontfill", "middlefill", "backfill", "futurefill"):
        method = getattr(fill, key)
        if method is not None and method not in CATEGORICAL_FILLS:
            raise ConfigError(f"covariate {shown(column)} is categorical: its {key} cannot be "
                              f"{method!r}; use none (a missing value is a level of its own) "
                              "or make the column numeric")
    if aggregation not in (None, "first"):
        raise ConfigError(f"covariate {shown(column)} is categorical: rows of one period "
                          f"cannot be combined by {aggregation!r}; use first")


class ForecastRequest(BaseModel):
    """What the user asked for: one forecasting job."""

    model_config = ConfigDict(extra="forbid")

    target: str
    timestamp: str
    item_id: str | None = None  # None: the table is one series
    grouping: list[str] = Field(default_factory=list)  # series = item x these columns
    frequency: str
    horizon: int
    quantiles: list[float] = Field(default_factory=lambda: [0.1, 0.5, 0.9])
    aggregation: Literal[AGGREGATIONS] | None = None  # type: ignore[valid-type]
    filling: Filling = Field(default_factory=Filling)
    objective: Literal[OBJECTIVES] = "AverageWeightedQuantileLoss"  # type: ignore[valid-type]
    time_limit: float = 300.0
    n_windows: int = 3  # backtest windows of `horizon` points each
    name: str | None = None
    candidates: list[str] | None = None  # None: every candidate that fits the data
    seed: int = 0
    # execute DataExploration.ipynb at the end when the time limit leaves enough for it
    execute_notebook: bool = True
    # HolidayConfig's CountryCode: the LightGBM candidate gets each period's public holidays
    holiday_country: str | None = None
    # known-in-advance numeric columns (TimeSeriesConfig's other columns): features of the
    # gradient-boosting candidate; their future values are given at forecast time
    covariates: list[str] = Field(default_factory=list)
    covariate_filling: dict[str, CovariateFilling] = Field(default_factory=dict)
    # per covariate, how rows within one period combine when `aggregation` is set (avg;
    # first for a categorical one)
    covariate_aggregation: dict[str, Literal[AGGREGATIONS]] = Field(  # type: ignore[valid-type]
        default_factory=dict)
    # categorical covariates (a promotion's kind, a store's type, a weather code) and their
    # levels in code order. A column that is not numeric is categorical unasked; naming a
    # column here with no levels makes a numeric one categorical too (codes that are not
    # quantities). The job fills in the levels it saw, and the model keeps them so that a
    # forecast encodes its covariates the same way; a level never seen is read as a missing one.
    covariate_categories: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, v: str) -> str:
        parse_frequency(v)
        return v

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, v: int) -> int:
        if not 1 <= v <= MAX_HORIZON:
            raise ConfigError(f"horizon {v} is outside 1-{MAX_HORIZON} (ForecastHorizon)")
        return v

    @field_validator("quantiles", mode="before")
    @classmethod
    def _quantiles(cls, v: Any) -> list[float]:
        items = v.split(",") if isinstance(v, str) else list(v)
        qs = sorted({parse_quantile(q) for q in items})
        if not 1 <= len(qs) <= MAX_QUANTILES:
            raise ConfigError(f"{len(qs)} quantiles given; ForecastQuantiles takes 1 to "
                              f"{MAX_QUANTILES}, e.g. 0.1,0.5,0.9")
        return qs

    @field_validator("grouping")
    @classmethod
    def _grouping(cls, v: list[str]) -> list[str]:
        if len(v) > MAX_GROUPING_COLUMNS:
            raise ConfigError(f"{len(v)} grouping columns given; at most "
                              f"{MAX_GROUPING_COLUMNS} (GroupingAttributeNames)")
        return v

    @field_validator("time_limit")
    @classmethod
    def _time(cls, v: float) -> float:
        if not math.isfinite(v) or v <= 0:
            raise ConfigError(f"time limit {v} s must be a positive number of seconds")
        return v

    @field_validator("holiday_country")
    @classmethod
    def _country(cls, v: str | None) -> str | None:
        if v is not None:
            check_country(v)
        return v

    @field_validator("n_windows")
    @classmethod
    def _windows(cls, v: int) -> int:
        if not 1 <= v <= 5:
            raise ConfigError(f"{v} backtest windows; use 1 to 5")
        return v

    @field_validator("covariates", mode="before")
    @classmethod
    def _covariates(cls, v: Any) -> list[str]:
        names = [c.strip() for c in v.split(",") if c.strip()] if isinstance(v, str) else list(v)
        if len(set(names)) < len(names):
            raise ConfigError(f"covariate {shown(next(c for c in names if names.count(c) > 1))} "
                              "is named twice; name each column once")
        return names

    @model_validator(mode="after")
    def _covariate_roles(self) -> ForecastRequest:
        roles = {self.target: "target", self.timestamp: "timestamp",
                 **({self.item_id: "item id"} if self.item_id else {}),
                 **{g: "grouping" for g in self.grouping}}
        for c in self.covariates:
            if c in roles:
                raise ConfigError(f"covariate {shown(c)} is the {roles[c]} column; a covariate "
                                  "is another column, known in advance for the horizon")
        for kind, named in (("filling", self.covariate_filling),
                            ("aggregation", self.covariate_aggregation),
                            ("categorical", self.covariate_categories)):
            stray = sorted(set(named) - set(self.covariates))
            if stray:
                raise ConfigError(f"{kind} is set for {shown(stray[0])}, which is not the target "
                                  f"nor a covariate ({', '.join(self.covariates) or 'none'}); "
                                  "add it with --covariates or drop its setting")
        return self

    @model_validator(mode="after")
    def _categorical_rules(self) -> ForecastRequest:
        for c in self.covariate_categories:
            check_categorical(c, self.covariate_fill(c), self.covariate_aggregation.get(c))
        return self

    def covariate_fill(self, column: str) -> CovariateFilling:
        """The filling of one covariate: its own, else the defaults."""
        return self.covariate_filling.get(column) or CovariateFilling()

    @property
    def season(self) -> int:
        return season_length(self.frequency)

    @property
    def pandas_frequency(self) -> str:
        return pandas_frequency(self.frequency)

    @classmethod
    def build(cls, **kwargs: Any) -> ForecastRequest:
        """The request, or the first problem with it as one ConfigError line (an unknown
        setting first, with the closest known name)."""
        import difflib

        for key in kwargs:
            if key not in cls.model_fields:
                close = difflib.get_close_matches(key, list(cls.model_fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else \
                    f"; known: {', '.join(cls.model_fields)}"
                raise ConfigError(f"unknown forecast setting {key!r}{hint}")
        try:
            return cls(**kwargs)
        except ValidationError as exc:
            first = exc.errors()[0]
            cause = (first.get("ctx") or {}).get("error")
            if isinstance(cause, ConfigError):
                raise cause from None
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"forecast setting {where}: {first['msg']}") from None
