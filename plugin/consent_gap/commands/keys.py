"""`consent-gap keys generate | jwks | rotate`: the scan's signing key (SMART Backend Services)
and the public JWKS file the app publishes at /.well-known/jwks.json (smart/keys.py).

The private key is written for the scan's host only (mode 0600); the JWKS file holds public
keys only, so the web tier can serve it without ever holding a private key. Rotation publishes
the new public key before the scan signs with it and keeps the old public key in the JWKS until
it is removed by hand (`keys jwks --remove KID`), when every EHR has fetched the new one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from consent_gap.commands.base import EXIT_OK, Command, UsageError

EPILOG = """\
examples:
  consent-gap keys generate --key /etc/consent-gap/scan-key.pem \\
                            --jwks /var/lib/consent-gap/jwks.json
  consent-gap keys jwks --key /etc/consent-gap/scan-key.pem          (print the public JWKS)
  consent-gap keys rotate --key /etc/consent-gap/scan-key.pem --jwks /var/lib/consent-gap/jwks.json
  consent-gap keys jwks --jwks /var/lib/consent-gap/jwks.json --remove OLD_KID

generate: a new private key (RSA 3072 bits for RS384 by default, --alg ES384 for EC P-384;
RSA under 2048 bits is refused) and its public key added to the JWKS file when --jwks is given.
jwks: the public JWKS of the keys given, merged into --jwks FILE when given (written back),
less the kids given with --remove; printed when no --jwks is given.
rotate: a new key of the same kind; the JWKS file gets it first and keeps the old public key;
then the private key file is replaced (the old private key is gone).
exit status: 0 done; 2 unusable key, file or arguments (nothing written).
"""


def arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                parser_class=type(parser))
    generate = sub.add_parser("generate", help="make a new private key (and its public JWKS)")
    generate.add_argument("--key", required=True, type=Path, metavar="PEM",
                          help="where to write the private key (must not exist)")
    generate.add_argument("--jwks", type=Path, metavar="FILE",
                          help="add the public key to this JWKS file (created if absent)")
    _kind(generate)
    jwks = sub.add_parser("jwks", help="print or update the public JWKS")
    jwks.add_argument("--key", action="append", default=[], type=Path, metavar="PEM",
                      help="a key (private or public PEM) to publish; repeatable")
    jwks.add_argument("--jwks", type=Path, metavar="FILE",
                      help="the JWKS file to update (default: print to standard output)")
    jwks.add_argument("--remove", action="append", default=[], metavar="KID",
                      help="take this key id out of the JWKS (after a rotation); repeatable")
    rotate = sub.add_parser("rotate", help="replace the private key, keeping the old public key "
                            "in the JWKS")
    rotate.add_argument("--key", required=True, type=Path, metavar="PEM",
                        help="the private key file to replace")
    rotate.add_argument("--jwks", required=True, type=Path, metavar="FILE",
                        help="the JWKS file the app publishes (CONSENT_GAP_JWKS_FILE)")
    _kind(rotate, default=None)


def _kind(parser: argparse.ArgumentParser, default: str | None = "RS384") -> None:
    parser.add_argument("--alg", choices=("RS384", "ES384"), default=default,
                        help="RS384 (RSA) or ES384 (EC P-384); "
                             + ("default RS384" if default else "default: as the old key"))
    parser.add_argument("--bits", type=int, default=None,
                        help="RSA modulus length (default 3072, at least 2048)")


def _existing_jwks(path: Path | None) -> list[dict]:
    from consent_gap.smart import keys

    return keys.read_jwks(path) if path is not None and path.exists() else []


def generate(args: argparse.Namespace) -> int:
    from consent_gap.smart import keys

    if args.key.exists():
        raise UsageError(f"{args.key} exists; `consent-gap keys rotate` replaces a key")
    if args.alg == "ES384" and args.bits is not None:
        raise UsageError("--bits is for RSA keys; an ES384 key is always on P-384")
    published = _existing_jwks(args.jwks)  # an unusable JWKS file stops us before writing
    key = keys.generate_signing_key(args.alg, args.bits or keys.DEFAULT_RSA_BITS)
    keys.write_private_pem(key, args.key)
    print(f"wrote the private key {args.key} ({key.alg}, kid {key.kid}); keep it for the scan "
          "only (CONSENT_GAP_PRIVATE_KEY)")
    if args.jwks is not None:
        keys.write_jwks(args.jwks, keys.merged_jwks([key.public_jwk()], published))
        print(f"published its public key in {args.jwks} (CONSENT_GAP_JWKS_FILE)")
    return EXIT_OK


def jwks(args: argparse.Namespace) -> int:
    from consent_gap.smart import keys

    added = []
    for path in args.key:
        try:
            added.append(keys.public_jwk_of_pem(path.read_bytes()))
        except OSError as error:
            raise UsageError(f"cannot read key file {path}: {error.strerror}") from None
        except keys.KeyFileError as error:
            raise UsageError(f"key file {path}: {error}") from None
    published = _existing_jwks(args.jwks)
    unknown = sorted(set(args.remove) - {jwk["kid"] for jwk in published + added})
    if unknown:
        raise UsageError(f"no key with kid {', '.join(unknown)} in the JWKS")
    result = keys.merged_jwks(added, published, remove=args.remove)
    if args.jwks is None:
        json.dump({"keys": result}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        keys.write_jwks(args.jwks, result)
        print(f"{args.jwks} publishes {len(result)} key(s): "
              + (", ".join(jwk["kid"] for jwk in result) or "none"))
    return EXIT_OK


def rotate(args: argparse.Namespace) -> int:
    from consent_gap.smart import keys

    old = keys.load_signing_key(args.key)
    alg = args.alg or old.alg
    if alg == "ES384" and args.bits is not None:
        raise UsageError("--bits is for RSA keys; an ES384 key is always on P-384")
    old_bits = keys.rsa_bits(old.key) if old.alg == "RS384" else 0
    new = keys.generate_signing_key(alg, args.bits or max(old_bits, keys.DEFAULT_RSA_BITS))
    published = _existing_jwks(args.jwks)
    # Publish first: the EHR can fetch the new public key before any assertion uses it.
    keys.write_jwks(args.jwks, keys.merged_jwks([new.public_jwk(), old.public_jwk()],
                                                published))
    keys.replace_private_pem(new, args.key)
    print(f"new key {new.kid} ({new.alg}) in {args.key}; {args.jwks} publishes it and the old "
          f"key {old.kid}. Once every EHR has fetched the new key, remove the old one: "
          f"consent-gap keys jwks --jwks {args.jwks} --remove {old.kid}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    return {"generate": generate, "jwks": jwks, "rotate": rotate}[args.action](args)


COMMAND = Command(
    name="keys",
    help="make, publish and rotate the scan's signing key (SMART Backend Services)",
    run=run,
    arguments=arguments,
    description="The scan signs its token requests with a private key; the EHR checks them "
                "against the public keys the app publishes at /.well-known/jwks.json from "
                "CONSENT_GAP_JWKS_FILE.",
    epilog=EPILOG,
)
