"""Helpers shared by the unit tests (a compact FHIR R4 bundle builder)."""
