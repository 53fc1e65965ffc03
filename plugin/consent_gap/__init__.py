"""consent-gap: flags disclosures that lack a signed authorization and a legal exception.

The version of the rules is not here: it is the one the rule tables in use name
(`[meta] ruleset` in mappings/, read as `Rules.ruleset`), so a practice's own tables carry
their own.
"""

__version__ = "0.1.0"
