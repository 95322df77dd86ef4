"""SageMaker Search over experiments, trials and trial components through boto3: the filters
ExperimentAnalytics and Run send, every operator, nested filters, sub-expressions, sorting
by a property path, paging, and a malformed search as one ValidationException line."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def runs(sm, metrics) -> list[str]:
    """Experiment `search-exp`: three runs (max_depth 2, 4, 6) in one trial, each with a
    loss curve; experiment `search-other` with one run in its own trial."""
    sm.create_experiment(ExperimentName="search-exp", Tags=[{"Key": "team", "Value": "growth"}])
    sm.create_experiment(ExperimentName="search-other")
    sm.create_trial(TrialName="search-group", ExperimentName="search-exp")
    sm.create_trial(TrialName="search-other-group", ExperimentName="search-other")
    names = []
    now = time.time()
    for depth in (2, 4, 6):
        name = f"search-exp-depth-{depth}"
        parameters = {"max_depth": {"NumberValue": depth}, "booster": {"StringValue": "gbtree"}}
        if depth == 6:
            parameters["eta"] = {"NumberValue": 0.1}
        sm.create_trial_component(TrialComponentName=name, DisplayName=f"Depth-{depth}",
                                  Parameters=parameters)
        sm.associate_trial_component(TrialComponentName=name, TrialName="search-group")
        metrics.batch_put_metrics(TrialComponentName=name, MetricData=[
            {"MetricName": "loss", "Timestamp": now + step, "Step": step,
             "Value": 1.0 / (depth + step)} for step in range(3)])
        names.append(name)
    sm.create_trial_component(TrialComponentName="search-other-run",
                              Parameters={"max_depth": {"NumberValue": 9}})
    sm.associate_trial_component(TrialComponentName="search-other-run",
                                 TrialName="search-other-group")
    return names


def _names(sm, expression: dict, **kwargs) -> list[str]:
    found = sm.search(Resource="ExperimentTrialComponent", SearchExpression=expression,
                      **kwargs)
    return sorted(r["TrialComponent"]["TrialComponentName"] for r in found["Results"])


def _in_experiment(*filters: dict) -> dict:
    return {"Filters": [{"Name": "Parents.ExperimentName", "Operator": "Equals",
                         "Value": "search-exp"}, *filters]}


def test_experiment_analytics_filter_and_the_record_it_reads(sm, runs) -> None:
    found = sm.search(Resource="ExperimentTrialComponent", SearchExpression=_in_experiment(),
                      MaxResults=100)
    assert found["TotalHits"] == {"Value": 3, "Relation": "EqualTo"}
    record = next(r["TrialComponent"] for r in found["Results"]
                  if r["TrialComponent"]["TrialComponentName"] == "search-exp-depth-4")
    assert record["Parents"] == [{"TrialName": "search-group", "ExperimentName": "search-exp"}]
    assert record["Parameters"]["max_depth"] == {"NumberValue": 4.0}
    loss = record["Metrics"][0]
    assert (loss["MetricName"], loss["Count"], loss["Last"]) == ("loss", 3, pytest.approx(1 / 6))


@pytest.mark.parametrize("extra, expected", [
    ({"Name": "Parameters.max_depth", "Operator": "GreaterThan", "Value": "3"}, [4, 6]),
    ({"Name": "Parameters.max_depth", "Operator": "LessThanOrEqualTo", "Value": "4"}, [2, 4]),
    ({"Name": "Parameters.booster", "Operator": "Equals", "Value": "gbtree"}, [2, 4, 6]),
    ({"Name": "Parameters.max_depth", "Operator": "NotEquals", "Value": "4"}, [2, 6]),
    ({"Name": "Metrics.loss", "Operator": "LessThan", "Value": "0.2"}, [4, 6]),  # Last
    ({"Name": "Metrics.loss.Max", "Operator": "GreaterThanOrEqualTo", "Value": "0.25"}, [2, 4]),
    ({"Name": "DisplayName", "Operator": "Contains", "Value": "DEPTH-4"}, [4]),
    ({"Name": "TrialComponentName", "Operator": "In",
      "Value": "search-exp-depth-2, search-exp-depth-6"}, [2, 6]),
    ({"Name": "Parameters.eta", "Operator": "Exists"}, [6]),
    ({"Name": "Parameters.eta", "Operator": "NotExists"}, [2, 4]),
    ({"Name": "CreationTime", "Operator": "GreaterThan", "Value": "2020-01-01T00:00:00Z"},
     [2, 4, 6]),
])
def test_operators(sm, runs, extra, expected) -> None:
    assert _names(sm, _in_experiment(extra)) == [f"search-exp-depth-{d}" for d in expected]


def test_nested_filters_and_sub_expressions(sm, runs) -> None:
    nested = {"NestedFilters": [{"NestedPropertyName": "Parents", "Filters": [
        {"Name": "Parents.TrialName", "Operator": "Equals", "Value": "search-other-group"},
        {"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": "search-other"}]}]}
    assert _names(sm, nested) == ["search-other-run"]
    either = {"Operator": "Or", "SubExpressions": [
        _in_experiment({"Name": "Parameters.max_depth", "Operator": "Equals", "Value": "2"}),
        {"Filters": [{"Name": "Parameters.max_depth", "Operator": "GreaterThan", "Value": "8"}]}]}
    assert _names(sm, either) == ["search-exp-depth-2", "search-other-run"]


def test_sort_by_a_property_path_and_page(sm, runs) -> None:
    seen, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        found = sm.search(Resource="ExperimentTrialComponent", SearchExpression=_in_experiment(),
                          SortBy="Parameters.max_depth", SortOrder="Descending", MaxResults=2,
                          **kwargs)
        seen += [r["TrialComponent"]["TrialComponentName"] for r in found["Results"]]
        token = found.get("NextToken")
        if not token:
            break
    assert seen == ["search-exp-depth-6", "search-exp-depth-4", "search-exp-depth-2"]


def test_experiments_and_trials(sm, runs) -> None:
    found = sm.search(Resource="Experiment", SearchExpression={"Filters": [
        {"Name": "Tags.team", "Operator": "Equals", "Value": "growth"}]})["Results"]
    assert [r["Experiment"]["ExperimentName"] for r in found] == ["search-exp"]
    assert found[0]["Experiment"]["Tags"] == [{"Key": "team", "Value": "growth"}]
    trials = sm.search(Resource="ExperimentTrial", SearchExpression={"Filters": [
        {"Name": "ExperimentName", "Operator": "Equals", "Value": "search-exp"}]})["Results"]
    assert [t["Trial"]["TrialName"] for t in trials] == ["search-group"]
    assert sorted(c["TrialComponentName"] for c in trials[0]["Trial"]["TrialComponentSummaries"]
                  ) == runs


@pytest.mark.parametrize("kwargs, words", [
    ({"Resource": "ExperimentTrialComponent", "SearchExpression": {"Filters": [
        {"Name": "Colour", "Operator": "Equals", "Value": "red"}]}}, "not a property"),
    ({"Resource": "ExperimentTrialComponent", "SearchExpression": {"Filters": [
        {"Name": "Parameters.max_depth", "Operator": "GreaterThan", "Value": "deep"}]}},
     "must be one"),
    ({"Resource": "ExperimentTrialComponent", "SearchExpression": {"Filters": [
        {"Name": "DisplayName", "Operator": "Equals"}]}}, "needs a Value"),
    ({"Resource": "ExperimentTrialComponent", "SearchExpression": {"Filters": [
        {"Name": "DisplayName", "Operator": "Resembles", "Value": "x"}]}}, "enum"),
    ({"Resource": "ExperimentTrialComponent", "SortBy": "Shoe.size"}, "not a property"),
    ({"Resource": "Endpoint"}, "tabpilot searches"),
])
def test_a_malformed_search_is_one_line(sm, runs, kwargs, words) -> None:
    with pytest.raises(ClientError) as caught:
        sm.search(**kwargs)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert words in error["Message"] and "\n" not in error["Message"]
