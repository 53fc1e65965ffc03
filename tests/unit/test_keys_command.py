"""`consent-gap keys generate | jwks | rotate` and the JWKS the app publishes from a file of
public keys (the web tier never holds the private key); weak keys refused in words, before any
request of the scan."""

from __future__ import annotations

import json
import stat

import pytest
import responses
from consent_gap.cli import main
from consent_gap.smart import keys
from consent_gap.web.app import create_app
from consent_gap.web.config import WebConfig
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PRIVATE = {"d", "p", "q", "dp", "dq", "qi"}


def weak_rsa_pem(bits: int = 1024) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def published(path) -> list[dict]:
    return json.loads(path.read_text())["keys"]


@pytest.mark.parametrize(("alg", "kty"), [("RS384", "RSA"), ("ES384", "EC")])
def test_generate_writes_a_private_key_for_its_owner_and_a_public_jwks(tmp_path, capsys,
                                                                        alg, kty):
    pem, jwks = tmp_path / "scan-key.pem", tmp_path / "public" / "jwks.json"
    assert main(["keys", "generate", "--key", str(pem), "--jwks", str(jwks), "--alg", alg]) == 0
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    key = keys.load_signing_key(pem)
    assert key.alg == alg
    [jwk] = published(jwks)
    assert jwk["kty"] == kty and jwk["kid"] == key.kid and jwk["alg"] == alg
    assert not PRIVATE & set(jwk)
    assert key.kid in capsys.readouterr().out


def test_generate_never_overwrites_a_key(tmp_path, capsys):
    pem = tmp_path / "scan-key.pem"
    main(["keys", "generate", "--key", str(pem)])
    before = pem.read_bytes()
    assert main(["keys", "generate", "--key", str(pem)]) == 2
    assert "keys rotate" in capsys.readouterr().err
    assert pem.read_bytes() == before


def test_rsa_under_2048_bits_is_refused_in_words(tmp_path, capsys):
    assert main(["keys", "generate", "--key", str(tmp_path / "k.pem"), "--bits", "1024"]) == 2
    err = capsys.readouterr().err
    assert "too short" in err and "2048" in err and "\n" not in err.strip()
    assert not (tmp_path / "k.pem").exists()
    weak = tmp_path / "weak.pem"
    weak.write_bytes(weak_rsa_pem())
    with pytest.raises(keys.KeyFileError, match=r"1024 bits; consent-gap needs at least 2048"):
        keys.load_signing_key(weak)
    assert main(["keys", "jwks", "--key", str(weak)]) == 2


def test_jwks_prints_or_updates_the_file_and_removes_by_kid(tmp_path, capsys):
    one, two, jwks = tmp_path / "one.pem", tmp_path / "two.pem", tmp_path / "jwks.json"
    main(["keys", "generate", "--key", str(one)])
    main(["keys", "generate", "--key", str(two), "--alg", "ES384"])
    capsys.readouterr()
    assert main(["keys", "jwks", "--key", str(one)]) == 0
    printed = json.loads(capsys.readouterr().out)["keys"]
    assert [k["kid"] for k in printed] == [keys.load_signing_key(one).kid]
    main(["keys", "jwks", "--key", str(one), "--jwks", str(jwks)])
    main(["keys", "jwks", "--key", str(two), "--jwks", str(jwks)])
    kids = [k["kid"] for k in published(jwks)]
    assert len(kids) == 2
    assert main(["keys", "jwks", "--jwks", str(jwks), "--remove", kids[0]]) == 0
    assert [k["kid"] for k in published(jwks)] == kids[1:]
    assert main(["keys", "jwks", "--jwks", str(jwks), "--remove", "nope"]) == 2


def test_rotate_publishes_the_new_key_and_keeps_the_old_until_removed(tmp_path, capsys):
    pem, jwks = tmp_path / "scan-key.pem", tmp_path / "jwks.json"
    main(["keys", "generate", "--key", str(pem), "--jwks", str(jwks)])
    old = keys.load_signing_key(pem)
    assert main(["keys", "rotate", "--key", str(pem), "--jwks", str(jwks)]) == 0
    new = keys.load_signing_key(pem)
    assert new.kid != old.kid and new.alg == old.alg
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert [k["kid"] for k in published(jwks)] == [new.kid, old.kid]
    assert f"--remove {old.kid}" in capsys.readouterr().out
    main(["keys", "rotate", "--key", str(pem), "--jwks", str(jwks)])
    newest = keys.load_signing_key(pem)
    assert [k["kid"] for k in published(jwks)] == [newest.kid, new.kid, old.kid]
    main(["keys", "jwks", "--jwks", str(jwks), "--remove", old.kid])
    assert [k["kid"] for k in published(jwks)] == [newest.kid, new.kid]


def test_the_app_publishes_the_jwks_file_and_follows_a_rotation(tmp_path):
    pem, jwks = tmp_path / "scan-key.pem", tmp_path / "jwks.json"
    main(["keys", "generate", "--key", str(pem), "--jwks", str(jwks)])
    client = create_app(config=WebConfig(jwks_file=jwks)).test_client()
    body = client.get("/.well-known/jwks.json").get_json()
    assert [k["kid"] for k in body["keys"]] == [keys.load_signing_key(pem).kid]
    assert not PRIVATE & set(body["keys"][0])
    main(["keys", "rotate", "--key", str(pem), "--jwks", str(jwks)])
    body = client.get("/.well-known/jwks.json").get_json()
    assert len(body["keys"]) == 2  # no restart needed
    assert create_app(config=WebConfig()).test_client().get(
        "/.well-known/jwks.json").get_json() == {"keys": []}


def test_the_app_refuses_a_jwks_file_holding_a_private_key(tmp_path):
    key = keys.generate_signing_key("ES384")
    leaked = tmp_path / "jwks.json"
    leaked.write_text(json.dumps({"keys": [dict(key.key.as_dict(private=True), kid="k")]}))
    with pytest.raises(ValueError, match=r"CONSENT_GAP_JWKS_FILE: .*holds a private key"):
        create_app(config=WebConfig(jwks_file=leaked))
    with pytest.raises(ValueError, match="CONSENT_GAP_JWKS_FILE: cannot read"):
        create_app(config=WebConfig(jwks_file=tmp_path / "absent.json"))


def test_the_scan_checks_its_key_before_any_request(tmp_path, capsys, monkeypatch):
    weak = tmp_path / "weak.pem"
    weak.write_bytes(weak_rsa_pem())
    monkeypatch.setenv("CONSENT_GAP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CONSENT_GAP_PRIVATE_KEY", str(weak))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        code = main(["scan", "--fhir-base", "https://ehr.test/fhir", "--auth", "backend"])
        assert len(mocked.calls) == 0
    err = capsys.readouterr().err
    assert code == 2
    assert "CONSENT_GAP_PRIVATE_KEY" in err and str(weak) in err and "2048" in err
