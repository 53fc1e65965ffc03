"""The app's signing keys for SMART Backend Services: load, generate, publish, rotate.

SMART clients must support RS384 and ES384 (client-confidential-asymmetric). An RSA key signs
RS384, an EC P-384 key ES384. The key id (`kid`) is the RFC 7638 JWK thumbprint, so the same key
always has the same id, and the EHR can match an assertion to the JWK it fetched from our JWKS.

The private key stays with the scan (CONSENT_GAP_PRIVATE_KEY). What the EHR fetches is a JWKS
*file* of public keys (CONSENT_GAP_JWKS_FILE), which the web app serves and never writes: the
web tier never holds a private key. `consent-gap keys` (commands/keys.py) writes both.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, RSAKey

SUPPORTED_ALGS = ("RS384", "ES384")
#: RSA keys shorter than this are refused (NIST SP 800-131A; SMART's RS384 assumes >= 2048).
MIN_RSA_BITS = 2048
DEFAULT_RSA_BITS = 3072
#: JWK members that only a private key has: a JWKS holding any of them is refused.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class KeyFileError(ValueError):
    """A key file that cannot be used (unreadable, wrong kind, wrong curve)."""


@dataclass(frozen=True)
class SigningKey:
    """A private key with the algorithm it signs with and its thumbprint `kid`."""

    key: RSAKey | ECKey
    alg: str

    @property
    def kid(self) -> str:
        return self.key.thumbprint()

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK with kid, alg and use (no key_ops: RFC 7517 4.3 advises
        against giving both)."""
        jwk = dict(self.key.as_dict(private=False))
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk

    def __repr__(self) -> str:
        return f"SigningKey(alg={self.alg!r}, kid={self.kid!r})"


def _import(cls: type[RSAKey] | type[ECKey], data: Any) -> RSAKey | ECKey:
    """joserfc's import, without its SecurityWarning on short keys: check_strength refuses
    them in the product's words instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls.import_key(data)


def rsa_bits(key: RSAKey) -> int:
    """The modulus length of an RSA key, in bits."""
    from joserfc.util import urlsafe_b64decode

    modulus = urlsafe_b64decode(str(key.get("n")).encode())
    return int.from_bytes(modulus, "big").bit_length()


def check_strength(key: RSAKey | ECKey) -> None:
    """Refuse an RSA key under MIN_RSA_BITS or an EC key off P-384, in words."""
    if isinstance(key, RSAKey):
        bits = rsa_bits(key)
        if bits < MIN_RSA_BITS:
            raise KeyFileError(
                f"this RSA key has {bits} bits; consent-gap needs at least {MIN_RSA_BITS} "
                f"(it makes {DEFAULT_RSA_BITS}): make a new one with `consent-gap keys "
                "generate` and register its public key with the EHR")
    elif key.get("crv") != "P-384":
        raise KeyFileError(f"an ES384 key must be on curve P-384, not {key.get('crv')}")


def _alg_for(key: RSAKey | ECKey, alg: str | None) -> str:
    natural = "RS384" if isinstance(key, RSAKey) else "ES384"
    check_strength(key)
    if alg is not None and alg != natural:
        raise KeyFileError(f"a {key.key_type} key cannot sign {alg}; it signs {natural}")
    return natural


def signing_key_from_pem(pem: bytes | str, alg: str | None = None) -> SigningKey:
    """Parse a private key in PEM (PKCS#8 or traditional); `alg` is checked if given."""
    data = pem.encode() if isinstance(pem, str) else pem
    if b"PRIVATE KEY" not in data:
        raise KeyFileError("not a PEM private key")
    errors = []
    for cls in (RSAKey, ECKey):
        try:
            key = _import(cls, data)
        except Exception as exc:  # joserfc raises several types for a key of the other kind
            errors.append(type(exc).__name__)
            continue
        if not key.is_private:
            raise KeyFileError("the PEM holds a public key; a private key is needed")
        return SigningKey(key, _alg_for(key, alg))
    raise KeyFileError(f"not an RSA or EC private key ({', '.join(errors)})")


def load_signing_key(path: str | os.PathLike[str], alg: str | None = None) -> SigningKey:
    """Load a PEM private key file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    try:
        return signing_key_from_pem(data, alg)
    except KeyFileError as error:
        raise KeyFileError(f"key file {path}: {error}") from None


def generate_signing_key(alg: str = "RS384", bits: int = DEFAULT_RSA_BITS) -> SigningKey:
    """A new key: RSA (3072 bits unless told, never under 2048) for RS384, P-384 for ES384."""
    if alg == "RS384":
        if bits < MIN_RSA_BITS:
            raise KeyFileError(f"an RSA key of {bits} bits is too short; consent-gap needs at "
                               f"least {MIN_RSA_BITS} (default {DEFAULT_RSA_BITS})")
        return SigningKey(RSAKey.generate_key(bits), alg)
    if alg == "ES384":
        return SigningKey(ECKey.generate_key("P-384"), alg)
    raise KeyFileError(f"unsupported algorithm {alg}; use one of {', '.join(SUPPORTED_ALGS)}")


def write_private_pem(key: SigningKey, path: str | os.PathLike[str]) -> None:
    """Write the private key as PKCS#8 PEM, readable by its owner only (mode 0600),
    without ever leaving a world-readable file behind."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.key.as_pem(private=True))
    os.chmod(target, 0o600)


def ensure_signing_key(path: str | os.PathLike[str], alg: str = "RS384") -> SigningKey:
    """Load the key at `path`, generating and writing one first if the file is absent
    (the app's first start, the sandbox's setup)."""
    if not Path(path).exists():
        write_private_pem(generate_signing_key(alg), path)
    return load_signing_key(path, alg)


def public_jwks(*keys: SigningKey) -> dict[str, Any]:
    """A JWKS document of the public keys, for `/.well-known/jwks.json`. Pass the old key too
    while rotating, so assertions signed by either verify."""
    return {"keys": [k.public_jwk() for k in keys]}


# ---- the public JWKS file (CONSENT_GAP_JWKS_FILE)


def public_jwk_of_pem(pem: bytes, alg: str | None = None) -> dict[str, Any]:
    """The public JWK (kid, alg, use) of a PEM key, public or private."""
    for cls in (RSAKey, ECKey):
        try:
            key = _import(cls, pem)
        except Exception:  # noqa: S112  joserfc raises several types for the other kind
            continue
        return SigningKey(key, _alg_for(key, alg)).public_jwk()
    raise KeyFileError("not an RSA or EC key in PEM")


def check_public_jwk(jwk: Any) -> dict[str, Any]:
    """One entry of a published JWKS: a public RSA (>= 2048 bits) or EC P-384 key with a kid."""
    if not isinstance(jwk, dict):
        raise KeyFileError("a JWKS entry is not a JSON object")
    if PRIVATE_MEMBERS & set(jwk):
        raise KeyFileError("it holds a private key; publish public keys only "
                           "(consent-gap keys jwks writes such a file)")
    try:
        key = _import(RSAKey if jwk.get("kty") == "RSA" else ECKey, jwk)
    except Exception as error:  # joserfc: several types for a malformed key
        raise KeyFileError(f"key {jwk.get('kid', '?')} cannot be read ({error})") from None
    check_strength(key)
    if not jwk.get("kid"):
        raise KeyFileError("a key has no kid")
    return dict(jwk)


def read_jwks(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The public keys of a JWKS file; KeyFileError naming the file when it is unusable."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeyFileError(f"cannot read JWKS file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise KeyFileError(f"JWKS file {path} is not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyFileError(f"JWKS file {path} is not a JWKS (an object with a \"keys\" list)")
    try:
        return [check_public_jwk(jwk) for jwk in document["keys"]]
    except KeyFileError as error:
        raise KeyFileError(f"JWKS file {path}: {error}") from None


def merged_jwks(first: Iterable[dict[str, Any]], then: Iterable[dict[str, Any]] = (),
                remove: Iterable[str] = ()) -> list[dict[str, Any]]:
    """``first`` then ``then``, each kid once (the first wins), without the kids in ``remove``."""
    gone, seen, keys = set(remove), set(), []
    for jwk in [*first, *then]:
        if jwk["kid"] in gone or jwk["kid"] in seen:
            continue
        seen.add(jwk["kid"])
        keys.append(check_public_jwk(jwk))
    return keys


def write_jwks(path: str | os.PathLike[str], keys: list[dict[str, Any]]) -> None:
    """Replace the JWKS file atomically (a reader sees the old file or the new, never half),
    readable by all: it holds public keys only, checked again here."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"keys": [check_public_jwk(jwk) for jwk in keys]}, indent=2) + "\n"
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def replace_private_pem(key: SigningKey, path: str | os.PathLike[str]) -> None:
    """Write a private key over ``path`` atomically, mode 0600 from the first byte."""
    target = Path(path)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.key.as_pem(private=True))
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
