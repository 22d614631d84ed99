"""Search: strategies and budgets (plain Python), and fitness with inherited weights (torch, imported lazily)."""

from glit.search.budget import Budget
from glit.search.strategy import Candidate, EvolutionConfig, SearchState, evolve, random_search

__all__ = ["Budget", "Candidate", "EvolutionConfig", "SearchState", "evolve", "random_search"]
