"""Custom Great Expectations (GX Core 1.x) expectations for MCQ and reasoning data, for the pandas engine.

Each is a real GX expectation: a metric provider that computes the per-row condition (or the aggregate),
and an Expectation class that GX validates, renders in Data Docs and reports `unexpected_index_list` for.
The logic lives in the project's own modules (reasoning, neutrality), so the gate and the GRPO rewards
judge text the same way.
"""

from __future__ import annotations

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnAggregateExpectation, ColumnMapExpectation
from great_expectations.expectations.metrics import (
    ColumnAggregateMetricProvider,
    ColumnMapMetricProvider,
    column_aggregate_value,
    column_condition_partial,
)

from mcqflow.core.reasoning import TAGS, ChainError, parse_chain
from mcqflow.quality.neutrality import neutrality_score


def _chain(text):
    try:
        return parse_chain(text) if isinstance(text, str) else None
    except ChainError:
        return None


# --- reasoning chain: the six tags, once each, in order -------------------------------------------------
class ColumnValuesWellFormedChain(ColumnMapMetricProvider):
    condition_metric_name = "column_values.mcqflow_well_formed_chain"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        return column.map(lambda t: (c := _chain(t)) is not None and c.tags == list(TAGS))


class ExpectColumnValuesToBeWellFormedReasoningChain(ColumnMapExpectation):
    """The value parses as XML with a hardened parser (no entities, no network) and holds the six tags
    <question><think><reasoning><reflection><adjustment><output>, each exactly once, in this order."""

    map_metric = "column_values.mcqflow_well_formed_chain"
    success_keys = ("mostly",)


# --- reasoning chain: enough "step k:" items -------------------------------------------------------------
class ColumnValuesChainSteps(ColumnMapMetricProvider):
    condition_metric_name = "column_values.mcqflow_chain_steps"
    condition_value_keys = ("min_steps",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, min_steps: int, **kwargs) -> pd.Series:
        return column.map(lambda t: (c := _chain(t)) is not None and len(c.steps()) >= min_steps)


class ExpectReasoningChainToHaveAtLeastNSteps(ColumnMapExpectation):
    """The chain's <reasoning> holds at least `min_steps` items written "step k: ..."."""

    map_metric = "column_values.mcqflow_chain_steps"
    success_keys = ("min_steps", "mostly")
    min_steps: int = 2


# --- neutrality -----------------------------------------------------------------------------------------
class ColumnValuesNeutral(ColumnMapMetricProvider):
    condition_metric_name = "column_values.mcqflow_neutral"
    condition_value_keys = ("threshold",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, threshold: float, **kwargs) -> pd.Series:
        return column.map(lambda t: neutrality_score(t if isinstance(t, str) else "") >= threshold)


class ExpectColumnValuesToBeNeutral(ColumnMapExpectation):
    """The lexicon neutrality score (mcqflow.quality.neutrality) of the text is at least `threshold`."""

    map_metric = "column_values.mcqflow_neutral"
    success_keys = ("threshold", "mostly")
    threshold: float = 0.5


# --- answer-letter balance ------------------------------------------------------------------------------
class ColumnMostCommonShare(ColumnAggregateMetricProvider):
    metric_name = "column.mcqflow_most_common_share"

    @column_aggregate_value(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> float:
        counts = column.dropna().value_counts()
        return float(counts.iloc[0] / counts.sum()) if len(counts) else 0.0


class ExpectColumnMostCommonValueShareToBeAtMost(ColumnAggregateExpectation):
    """No single value (e.g. one answer letter) takes more than `max_share` of the rows."""

    metric_dependencies = ("column.mcqflow_most_common_share",)
    success_keys = ("max_share",)
    max_share: float = 0.4

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        share = metrics["column.mcqflow_most_common_share"]
        return {"success": share <= self.max_share, "result": {"observed_value": share}}
