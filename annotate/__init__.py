"""Entity-relation corpora and models for diplomacy and defence news."""

__version__ = "0.1.0"
