"""Key pairs the launcher creates on first start (its id_token key, the backend clients' keys).

Keys live in the keys folder (sandbox/var/keys/ by default, gitignored) as PKCS#8 PEM files,
readable only by their owner; the scan and the tests sign their assertions with the same files.
The `kid` of every published key is its RFC 7638 thumbprint, as the app's backend client
computes it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, RSAKey

Key = RSAKey | ECKey
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def generate_key(alg: str) -> Key:
    """A new private key suited to `alg` (RS*: RSA 2048; ES*: the matching curve)."""
    if alg.startswith(("RS", "PS")):
        return RSAKey.generate_key(2048, private=True)
    if alg in _CURVES:
        return ECKey.generate_key(_CURVES[alg], private=True)
    raise ValueError(f"unsupported key algorithm {alg!r}")


def load_key(path: Path) -> Key:
    pem = path.read_bytes()
    private = serialization.load_pem_private_key(pem, password=None)
    if isinstance(private, rsa.RSAPrivateKey):
        return RSAKey.import_key(pem)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return ECKey.import_key(pem)
    raise ValueError(f"{path.name}: not an RSA or EC private key")


def ensure_key(path: Path, alg: str) -> Key:
    """Load the private key at `path`, creating it (mode 0600, written atomically) when absent."""
    if path.exists():
        return load_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key(alg)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pem")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.as_pem(private=True))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return load_key(path)


def public_jwk(key: Key, alg: str) -> dict:
    """The public JWK to publish or register, with `kid` = thumbprint, `alg` and `use`."""
    jwk = dict(key.as_dict(private=False))
    jwk.update(kid=key.thumbprint(), alg=alg, use="sig")
    return jwk
