"""Proposing candidates: the portfolio first, then Bayesian optimisation (ask/tell)."""

from tabpilot.search.strategy import PortfolioThenTPE, Proposal, SearchStrategy

__all__ = ["PortfolioThenTPE", "Proposal", "SearchStrategy"]
