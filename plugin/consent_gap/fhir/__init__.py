"""HTTP access to a FHIR R4 server: the client, its errors, capability checks and fetch plans."""

from consent_gap.fhir.auth import BearerAuth
from consent_gap.fhir.capabilities import (
    CapabilityIndex,
    ResourceRequirement,
    requirements_from_mapping,
)
from consent_gap.fhir.client import CreateResult, FhirClient
from consent_gap.fhir.errors import (
    FhirError,
    FhirHttpError,
    FhirPagingError,
    FhirTransactionError,
    FhirTransportError,
)
from consent_gap.fhir.retry import RetryPolicy

__all__ = [
    "BearerAuth",
    "CapabilityIndex",
    "CreateResult",
    "FhirClient",
    "FhirError",
    "FhirHttpError",
    "FhirPagingError",
    "FhirTransactionError",
    "FhirTransportError",
    "ResourceRequirement",
    "RetryPolicy",
    "requirements_from_mapping",
]
