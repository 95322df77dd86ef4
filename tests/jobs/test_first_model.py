"""Time limits always give a model: the first trial runs whatever the reserves say, and a
limit too short for the table is refused up front with the minimum it needs."""

from __future__ import annotations

import pytest

from tabpilot import AutoML
from tabpilot.errors import ConfigError
from tabpilot.jobs import shares
from tabpilot.jobs.runner import JobRunner


def test_too_short_a_limit_is_refused_with_the_minimum(tmp_path, binary_frame) -> None:
    ws = tmp_path / "ws"
    with pytest.raises(ConfigError, match=r"time limit of 2s is too short for this table "
                                          r"\(300 rows x 3 columns.*pass --time-limit (\d+)"
                       ) as caught:
        AutoML("y", time_limit=2, workspace=ws, verbosity=0).fit(binary_frame(300))
    needed = int(str(caught.value).rsplit("--time-limit ", 1)[1].split()[0])
    assert needed == shares.minimum_time_limit(300, 3, 0.0) or needed > 2
    assert not ws.exists()  # refused before anything was saved


def test_minimum_grows_with_the_table() -> None:
    small = shares.minimum_time_limit(1_000, 10, 0.1)
    assert shares.minimum_time_limit(1_000_000, 50, 0.1) > small
    assert shares.minimum_time_limit(1_000, 10, 5.0) >= small + 10  # read twice
    # time spent before the check (imports, the store's creation) counts once, not twice
    assert shares.minimum_time_limit(1_000, 10, 0.1, 5.1) == \
        shares.minimum_time_limit(1_000, 10, 5.0, 5.0) - 5


def test_first_trial_runs_when_the_reserves_leave_no_time(tmp_path, binary_frame,
                                                          monkeypatch) -> None:
    """The later steps' reserves swallow the whole limit: without the first-trial rule the
    search would submit nothing and the job would fail with no candidate."""
    monkeypatch.setattr(JobRunner, "_level2_shares", lambda self, *a, **k: (0.0, 10_000.0))
    job = AutoML("y", time_limit=20, algorithms=["lightgbm"], workers=1, workspace=tmp_path,
                 verbosity=0, distill=False).fit(binary_frame(300))
    desc = job.describe()
    assert desc["AutoMLJobStatus"] == "Completed", desc.get("FailureReason")
    completed = [c for c in job.candidates() if c["CandidateStatus"] == "Completed"]
    assert [c["CandidateName"] for c in completed] == ["lightgbm-000"]
    assert desc["BestCandidate"]["CandidateName"] == "lightgbm-000"
