"""consent-gap: flags disclosures that lack a signed authorization and a legal exception."""

__version__ = "0.1.0"
RULESET = "2026.2"
