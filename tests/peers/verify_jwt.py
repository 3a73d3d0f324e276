#!/usr/bin/env python3
"""Verifies a latchkey access token as a third-party resource server would: PyJWT, with the signing
key fetched from latchkey's HTTP JWKS.

Usage: verify_jwt.py HTTP_ADDR < token

Prints the verified claims as JSON on standard output; on any failure prints the reason on standard
error and exits with status 1. The token is read from standard input so that it never appears in a
process listing.
"""

import json
import sys

try:
    import jwt
except ImportError as missing:
    print(f"missing peer: {missing} (pip install -r tests/peers/requirements.txt)", file=sys.stderr)
    sys.exit(3)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: verify_jwt.py HTTP_ADDR < token", file=sys.stderr)
        return 2
    token = sys.stdin.read().strip()
    try:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != "at+jwt":
            raise jwt.InvalidTokenError(f"header typ is {header.get('typ')!r}, not 'at+jwt'")
        client = jwt.PyJWKClient(f"http://{sys.argv[1]}/.well-known/jwks.json")
        signing_key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            signing_key,
            algorithms=["EdDSA", "ES256", "RS256"],
            audience="latchkey",
            issuer="latchkey",
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )
    except (jwt.PyJWTError, ValueError) as error:
        print(f"verification failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"header": header, "claims": claims}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
