"""SMART App Launch 2.x sandbox launcher in front of a FHIR server (see sandbox/smart/README.md)."""
