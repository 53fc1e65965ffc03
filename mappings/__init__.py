"""Rules as data, shipped inside the package as consent_gap.mappings_data."""
