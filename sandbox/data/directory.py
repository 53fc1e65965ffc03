"""The shared part of the synthetic world: clinics, therapists, police, CPS, courts, payers...

Fixed (independent of the seed and the size) so that every batch of patients can reference it and
a reload overwrites the same ids. Per-state agencies sit in the patient's state; national parties
(law firms, payers, employers, outside providers) serve everyone. Pools are large enough that a
patient never has to reuse a recipient, which keeps each scenario's decision independent of the
others on the same chart (a Consent naming one recipient can never cover another scenario).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import fhirbuild as fb

Json = fb.Json

STATES: dict[str, tuple[str, str]] = {
    "CA": ("Sacramento", "958"), "TX": ("Austin", "787"), "NY": ("Albany", "122"),
    "FL": ("Tallahassee", "323"), "AL": ("Montgomery", "361"), "MS": ("Jackson", "392"),
    "WA": ("Olympia", "985"), "KS": ("Topeka", "666"),
}

# kind: (count, label, name pattern); per state
STATE_KINDS: dict[str, tuple[int, str, str]] = {
    "police": (3, "Law enforcement agency", "{city} {n} Precinct Police Department"),
    "cps": (2, "Child protective services", "{county} County Child Protective Services {n}"),
    "aps": (2, "Adult protective services", "{county} County Adult Protective Services {n}"),
    "court": (2, "Court", "{county} County Superior Court, Department {n}"),
    "crisis": (3, "Mobile crisis team / emergency department", "{city} Crisis Response Unit {n}"),
    "agency": (3, "Government agency", "{state} Board of Behavioral Health Examiners, Unit {n}"),
}

# kind: (count, label, names); national
NATIONAL_KINDS: dict[str, tuple[int, str, list[str]]] = {
    "law": (12, "Law firm", ["Castellan", "Whitcombe", "Hartwell", "Harrowgate", "Marlowe",
                             "Pennick", "Ashdown", "Brightwater", "Culver", "Dunmore",
                             "Ellery", "Fairleigh"]),
    "payer": (8, "Health plan (payer)", ["Goldline", "Northstar", "Bluecrest", "Evergreen",
                                         "Summit", "Harborview", "Prairie", "Keystone"]),
    "insurer": (8, "Disability insurer", ["Kestrel", "Larchmont", "Sterling", "Osprey",
                                          "Meridian", "Granite", "Willowbrook", "Beacon"]),
    "employer": (8, "Employer", ["Quarry Logistics", "Tallis Foods", "Redfern Systems",
                                 "Juniper Retail", "Orchard Freight", "Calder Works",
                                 "Halvorsen Energy", "Wexford Labs"]),
    "provider": (8, "Outside medical group", ["Larkin Bay Medical", "Riverside Family Medicine",
                                              "Alder Psychiatry", "Cobalt Health",
                                              "Fenwick Clinic", "Glenmore Medical",
                                              "Hollis Primary Care", "Ivywood Health"]),
    "school": (6, "School", ["Northgate High School", "Maple Ridge Middle School",
                             "Cedar Park Academy", "Lakeside High School",
                             "Westbrook Middle School", "Pinecrest Academy"]),
    "records": (20, "Records requester", [f"Records Request Service {n}"
                                          for n in range(1, 21)]),
}

OUTSIDE_CLINICIANS = [("Odegaard", "Rafael", "MD"), ("Lutz", "Ambrose", "MD"),
                      ("Nguyen", "Thi", "MD"), ("Okafor", "Chidi", "DO"),
                      ("Brandt", "Helena", "MD"), ("Castillo", "Marisol", "PMHNP"),
                      ("Ferreira", "Joao", "MD"), ("Holm", "Ingrid", "MD")]
THERAPISTS = [("Oakfield", "Maren", "PsyD"), ("Whitlock", "Samuel", "LCSW"),
              ("Abara", "Nkechi", "LMFT"), ("Tremaine", "Paul", "PhD")]


@dataclass
class Directory:
    """Every shared resource, and the pools scenarios draw recipients from."""

    resources: list[Json] = field(default_factory=list)
    pools: dict[str, list[str]] = field(default_factory=dict)
    therapists: dict[str, list[str]] = field(default_factory=dict)
    supervisors: dict[str, str] = field(default_factory=dict)

    def pool(self, kind: str, state: str) -> list[str]:
        return self.pools.get(f"{kind}:{state}") or self.pools[kind]


def clinic_id(state: str) -> str:
    return f"org-clinic-{state.lower()}"


def build_directory() -> Directory:
    d = Directory()
    for state, (city, postal) in STATES.items():
        _add_state(d, state, city, postal)
    for kind, (count, kind_label, names) in NATIONAL_KINDS.items():
        refs = []
        for n in range(1, count + 1):
            oid = f"org-{kind}-{n:02d}"
            suffix = {"law": " LLP", "payer": " Health Plan", "insurer": " Disability Insurance",
                      "employer": " Inc."}.get(kind, "")
            org = fb.organization(oid, names[n - 1] + suffix, kind_label,
                                  fb.address("CA", "Sacramento", f"{100 + n} Commerce Way",
                                             "95814"),
                                  {"system": f"{fb.EHR}/sid/org-npi", "value": f"19{n:08d}"})
            d.resources.append(org)
            refs.append(f"Organization/{oid}")
        d.pools[kind] = refs
    refs = []
    for n, (family, given, suffix) in enumerate(OUTSIDE_CLINICIANS, start=1):
        pid = f"pr-ext-{n:02d}"
        d.resources.append(fb.practitioner(pid, family, given, suffix, f"EXT-{n:04d}"))
        refs.append(f"Practitioner/{pid}")
    d.pools["clinician"] = refs
    return d


def _add_state(d: Directory, state: str, city: str, postal: str) -> None:
    low = state.lower()
    clinic = clinic_id(state)
    d.resources.append(fb.organization(
        clinic, f"{city} Counseling Associates", "Outpatient behavioral health clinic",
        fb.address(state, city, "2140 Larkmead Avenue, Suite 300", f"{postal}18")))
    therapists = []
    for n, (family, given, suffix) in enumerate(THERAPISTS[:2], start=1):
        pid = f"pr-{low}-{n}"
        d.resources.append(fb.practitioner(pid, family, given, suffix, f"{state}-{n:04d}"))
        d.resources.append(fb.practitioner_role(f"prr-{low}-{n}", pid, clinic, "101YP2500X",
                                                "Professional counselor"))
        therapists.append(pid)
    d.therapists[state] = therapists
    sup_family, sup_given, sup_suffix = THERAPISTS[3]
    d.resources.append(fb.practitioner(f"pr-{low}-sup", sup_family, sup_given, sup_suffix,
                                       f"{state}-0900"))
    d.resources.append(fb.practitioner_role(f"prr-{low}-sup", f"pr-{low}-sup", clinic,
                                            "103T00000X", "Clinical supervisor"))
    d.supervisors[state] = f"PractitionerRole/prr-{low}-sup"
    for kind, (count, kind_label, pattern) in STATE_KINDS.items():
        refs = []
        for n in range(1, count + 1):
            oid = f"org-{kind}-{low}-{n}"
            name = pattern.format(city=city, county=city, state=state, n=n)
            d.resources.append(fb.organization(oid, name, kind_label,
                                               fb.address(state, city, f"{n * 100} Civic Center",
                                                          f"{postal}{10 + n}")))
            refs.append(f"Organization/{oid}")
        d.pools[f"{kind}:{state}"] = refs
