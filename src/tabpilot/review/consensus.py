"""The majority rule: when a loop has its reviewers' answers, is there a label, and how much
did they agree?

Each of `needed` distinct reviewers gives one label. With all answers in, the label with
most votes wins; a tie for the most votes asks one reviewer more (escalation), up to
`ceiling` reviewers, beyond which the loop fails with no majority. Agreement is the
winner's share of the votes (1.0 unanimous), reported with the loop's output.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    state: str  # "waiting" | "escalate" | "decided" | "no-majority" (| "stopped": the desk's)
    label: str | None = None
    agreement: float | None = None
    votes: dict[str, int] | None = None


def ceiling(task_count: int) -> int:
    """The most reviewers a loop asks: enough to break any tie of TaskCount once, twice."""
    return 2 * task_count + 1


def decide(labels: list[str], needed: int, task_count: int) -> Verdict:
    if len(labels) < needed:
        return Verdict("waiting")
    votes = Counter(labels)
    ranked = votes.most_common()
    top = ranked[0][1]
    leaders = [label for label, count in ranked if count == top]
    shares = dict(sorted(votes.items()))
    if len(leaders) > 1:
        state = "escalate" if needed < ceiling(task_count) else "no-majority"
        return Verdict(state, None, top / len(labels), shares)
    return Verdict("decided", leaders[0], top / len(labels), shares)
