"""Proposing candidates: the portfolio first, then Bayesian optimisation (ask/tell)."""

from tabpilot.search.strategy import Finished, PortfolioThenTPE, Proposal, SearchStrategy

__all__ = ["Finished", "PortfolioThenTPE", "Proposal", "SearchStrategy"]
