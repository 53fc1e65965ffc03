"""The app's signing keys for SMART Backend Services: load, generate, publish.

SMART clients must support RS384 and ES384 (client-confidential-asymmetric). An RSA key signs
RS384, an EC P-384 key ES384. The key id (`kid`) is the RFC 7638 JWK thumbprint, so the same key
always has the same id, and the EHR can match an assertion to the JWK it fetched from our JWKS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, RSAKey

SUPPORTED_ALGS = ("RS384", "ES384")


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


def _alg_for(key: RSAKey | ECKey, alg: str | None) -> str:
    natural = "RS384" if isinstance(key, RSAKey) else "ES384"
    if isinstance(key, ECKey) and key.get("crv") != "P-384":
        raise KeyFileError(f"an ES384 key must be on curve P-384, not {key.get('crv')}")
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
            key = cls.import_key(data)
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
        raise KeyFileError(f"cannot read key file {Path(path).name}: {exc.strerror}") from exc
    return signing_key_from_pem(data, alg)


def generate_signing_key(alg: str = "RS384") -> SigningKey:
    """A new key: RSA 3072 bits for RS384, P-384 for ES384."""
    if alg == "RS384":
        return SigningKey(RSAKey.generate_key(3072), alg)
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
