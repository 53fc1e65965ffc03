"""Settings: environment over file over defaults, and errors that name the variable."""

from pathlib import Path

import pytest
from consent_gap.settings import (
    SCAN_SCOPES,
    VARIABLES,
    Settings,
    SettingsError,
    describe,
    load_settings,
    require,
)


def test_defaults_without_anything():
    settings = load_settings({})
    assert settings.auth == "none"
    assert settings.schedule == "0 2 * * *"
    assert settings.timezone == "UTC"
    assert settings.batch_size == 50
    assert settings.scopes == SCAN_SCOPES
    assert "system/Consent.rs" in settings.scopes
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("consent-gap.db")


def test_environment_values_are_parsed():
    settings = load_settings(
        {
            "CONSENT_GAP_FHIR_BASE": "http://127.0.0.1:8080/fhir/",
            "CONSENT_GAP_JURISDICTION": "us-ca",
            "CONSENT_GAP_BATCH_SIZE": " 20 ",
            "CONSENT_GAP_PRIVACY_OFFICER": "Practitioner/po-1",
            "CONSENT_GAP_ORGANIZATION": "Organization/org-1",
            "CONSENT_GAP_SCHEDULE": "30  3 * * 1-5",
            "CONSENT_GAP_TIMEZONE": "America/Los_Angeles",
        }
    )
    assert settings.fhir_base == "http://127.0.0.1:8080/fhir"
    assert settings.jurisdiction == "US-CA"
    assert settings.batch_size == 20
    assert settings.privacy_officer == "Practitioner/po-1"
    assert settings.schedule == "30 3 * * 1-5"


def test_file_is_read_and_environment_wins(tmp_path: Path):
    config = tmp_path / "consent-gap.toml"
    config.write_text(
        'fhir_base = "http://file.example/fhir"\n'
        'jurisdiction = "US-NY"\n'
        "batch_size = 10\n"
        'scopes = ["system/Consent.rs", "system/AuditEvent.rs"]\n'
    )
    settings = load_settings(
        {"CONSENT_GAP_CONFIG": str(config), "CONSENT_GAP_JURISDICTION": "US-CA"}
    )
    assert settings.fhir_base == "http://file.example/fhir"
    assert settings.jurisdiction == "US-CA"
    assert settings.batch_size == 10
    assert settings.scopes == "system/Consent.rs system/AuditEvent.rs"


def test_file_may_use_a_consent_gap_table(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[consent_gap]\nauth = "none"\ncheckpoint_url = "sqlite:///x.db"\n')
    assert load_settings({"CONSENT_GAP_CONFIG": str(config)}).database_url == "sqlite:///x.db"


def test_empty_environment_value_does_not_erase_the_file(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('jurisdiction = "US-TX"\n')
    env = {"CONSENT_GAP_CONFIG": str(config), "CONSENT_GAP_JURISDICTION": ""}
    assert load_settings(env).jurisdiction == "US-TX"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("CONSENT_GAP_FHIR_BASE", "ftp://x", "http(s) URL"),
        ("CONSENT_GAP_AUTH", "oauth", "none, backend"),
        ("CONSENT_GAP_BATCH_SIZE", "many", "whole number"),
        ("CONSENT_GAP_BATCH_SIZE", "0", "between 1 and 500"),
        ("CONSENT_GAP_JURISDICTION", "California", "ISO 3166-2"),
        ("CONSENT_GAP_PRIVACY_OFFICER", "Patient/p1", "Practitioner/id"),
        ("CONSENT_GAP_ORGANIZATION", "org-1", "Organization/id"),
        ("CONSENT_GAP_SCHEDULE", "nightly", "5 fields"),
        ("CONSENT_GAP_TIMEZONE", "Mars/Olympus", "IANA"),
    ],
)
def test_bad_values_name_the_variable(variable, value, words):
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value})
    assert str(caught.value).startswith(variable + ":")
    assert words in str(caught.value)


def test_bad_file_value_names_the_key_and_file(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text("batch_size = 100000\n")
    with pytest.raises(SettingsError, match=r"batch_size in .*c\.toml: must be between"):
        load_settings({"CONSENT_GAP_CONFIG": str(config)})


def test_unknown_file_key_and_missing_file_are_errors(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('fhir_bsae = "http://x/fhir"\n')
    with pytest.raises(SettingsError, match=r"unknown key.*fhir_bsae"):
        load_settings({"CONSENT_GAP_CONFIG": str(config)})
    with pytest.raises(SettingsError, match="CONSENT_GAP_CONFIG: no such file"):
        load_settings({"CONSENT_GAP_CONFIG": str(tmp_path / "absent.toml")})
    config.write_text("fhir_base = \n")
    with pytest.raises(SettingsError, match="CONSENT_GAP_CONFIG: cannot read"):
        load_settings({"CONSENT_GAP_CONFIG": str(config)})


def test_backend_auth_needs_a_private_key():
    with pytest.raises(SettingsError, match="CONSENT_GAP_PRIVATE_KEY: required"):
        load_settings({"CONSENT_GAP_AUTH": "backend"})
    settings = load_settings({"CONSENT_GAP_AUTH": "backend", "CONSENT_GAP_PRIVATE_KEY": "k.pem"})
    assert settings.private_key == Path("k.pem")
    with pytest.raises(SettingsError, match="PRIVATE_KEY"):
        Settings().with_overrides(auth="backend")


def test_overrides_keep_unset_values_and_require_names_missing():
    settings = load_settings({"CONSENT_GAP_JURISDICTION": "US-CA"})
    changed = settings.with_overrides(fhir_base="http://h/fhir", jurisdiction=None)
    assert changed.fhir_base == "http://h/fhir"
    assert changed.jurisdiction == "US-CA"
    with pytest.raises(SettingsError, match="CONSENT_GAP_FHIR_BASE is not set"):
        require(settings, "fhir_base")
    require(changed, "fhir_base")


def test_overrides_are_parsed_and_errors_name_the_option():
    changed = Settings().with_overrides(fhir_base="http://h/fhir/", jurisdiction="us-ny")
    assert (changed.fhir_base, changed.jurisdiction) == ("http://h/fhir", "US-NY")
    with pytest.raises(SettingsError, match="--fhir-base: must be an http"):
        Settings().with_overrides(fhir_base="ftp://x")


def test_describe_hides_database_passwords():
    settings = Settings(checkpoint_url="postgresql://scan:s3cret@db/consent")
    shown = describe(settings)
    assert "s3cret" not in shown["checkpoint_url"]
    assert shown["checkpoint_url"] == "postgresql://scan:***@db/consent"


def test_every_field_has_exactly_one_variable():
    from dataclasses import fields

    names = [var.name for var in VARIABLES]
    assert len(names) == len(set(names))
    assert set(names) == {item.name for item in fields(Settings)}
    doc = __import__("consent_gap.settings", fromlist=["x"]).__doc__
    for var in VARIABLES:
        assert f"`{var.env}`" in doc, f"{var.env} missing from the docstring table"


def test_cds_clients_from_the_environment_are_issuer_jwks_pairs():
    settings = load_settings({"CONSENT_GAP_CDS_CLIENTS": (
        "http://127.0.0.1:8081=http://127.0.0.1:8081/sandbox/cds/jwks.json "
        " urn:ehr:a=https://a.test/jwks?v=1")})
    assert settings.cds_clients == (
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081/sandbox/cds/jwks.json"),
        ("urn:ehr:a", "https://a.test/jwks?v=1"),
    )


def test_cds_clients_from_a_toml_table(tmp_path: Path):
    config = tmp_path / "consent-gap.toml"
    config.write_text('jurisdiction = "US-CA"\n\n[cds_clients]\n'
                      '"https://ehr.test" = "https://ehr.test/jwks.json"\n')
    settings = load_settings({"CONSENT_GAP_CONFIG": str(config)})
    assert settings.cds_clients == (("https://ehr.test", "https://ehr.test/jwks.json"),)
    assert settings.jurisdiction == "US-CA"


@pytest.mark.parametrize("value", [
    "https://ehr.test",  # no JWKS URL
    "https://ehr.test=ftp://ehr.test/jwks",  # not http(s)
    "a=https://a.test/jwks a=https://b.test/jwks",  # the same issuer twice
])
def test_bad_cds_clients_name_the_variable(value):
    with pytest.raises(SettingsError, match="CONSENT_GAP_CDS_CLIENTS"):
        load_settings({"CONSENT_GAP_CDS_CLIENTS": value})


# ---- one database for the checkpoint, the job store and the sessions

PG = "postgresql://scan:s3cret@db.example/consent"


def test_one_database_url_serves_the_checkpoint_the_job_store_and_the_sessions():
    settings = load_settings({"CONSENT_GAP_DATABASE_URL": PG})
    assert settings.database_url == PG
    assert settings.session_url == PG
    assert describe(settings)["database"] == "postgresql://scan:***@db.example/consent"
    assert "s3cret" not in describe(settings)["session_store"]


def test_the_earlier_checkpoint_url_still_names_the_checkpoint_database(tmp_path):
    settings = load_settings({"CONSENT_GAP_CHECKPOINT_URL": PG})
    assert settings.database_url == PG
    assert settings.session_url == "memory"  # as before: sessions follow the new name only
    same = load_settings({"CONSENT_GAP_CHECKPOINT_URL": PG, "CONSENT_GAP_DATABASE_URL": PG})
    assert same.database_url == PG
    with pytest.raises(SettingsError, match="DATABASE_URL and CONSENT_GAP_CHECKPOINT_URL"):
        load_settings({"CONSENT_GAP_CHECKPOINT_URL": PG,
                       "CONSENT_GAP_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})


def test_the_database_url_is_read_from_the_file_under_its_name(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'database_url = "{PG}"\n')
    assert load_settings({"CONSENT_GAP_CONFIG": str(config)}).database_url == PG


@pytest.mark.parametrize("variable", ["CONSENT_GAP_DATABASE_URL", "CONSENT_GAP_CHECKPOINT_URL"])
def test_a_malformed_database_url_names_its_variable(variable):
    with pytest.raises(SettingsError, match=f"{variable}: must be a SQLAlchemy URL"):
        load_settings({variable: "not a url"})


@pytest.mark.parametrize(("store", "expected"), [
    ("memory", "memory"),
    ("database", "sqlite:///"),  # the default database, in the state folder
    ("sqlite:/srv/cg/sessions.db", "sqlite:////srv/cg/sessions.db"),
    (PG, PG),
])
def test_the_session_store_spellings(store, expected, tmp_path):
    settings = load_settings({"CONSENT_GAP_SESSION_STORE": store,
                              "CONSENT_GAP_STATE_DIR": str(tmp_path)})
    assert settings.session_url.startswith(expected)


def test_a_bad_session_store_is_refused():
    with pytest.raises(SettingsError, match="CONSENT_GAP_SESSION_STORE: must be memory"):
        load_settings({"CONSENT_GAP_SESSION_STORE": "redis"})
