"""Synthetic therapy charts for the sandbox, the tests and the benchmarks.

`charts` builds patients with disclosures for every scenario the decision contract distinguishes,
each carrying the decision it should get; `output` writes them as FHIR bundles or loads them into a
server; `generate.py` is the command line.
"""
