"""consent-gap: checks every recorded disclosure against signed authorizations and legal exceptions."""

__version__ = "0.1.0"
RULESET = "2026.2"
