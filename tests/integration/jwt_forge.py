"""Hand-built JSON Web Tokens for the authentication attack suite (tests/integration/test_authn.py).

Debian's python3-jwt (2.6) is the independent signer for *valid* tokens, but it refuses to make
most hostile ones: an HS256 token keyed with a PEM public key (the algorithm-confusion attack),
`alg: none` spelled in other cases, duplicate JSON members, a token over the size limit. This
module builds them byte by byte with hmac, hashlib and base64, so the test controls every byte
the server sees. It signs HS* itself and delegates RS*/ES* signatures to python3-cryptography
when a test needs a correctly signed token with an odd header or payload.

Nothing here talks to the network; every function returns a str token."""

import base64
import hashlib
import hmac
import json

HS_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data):
    """base64url without padding (RFC 7515 section 2)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(obj):
    """A JSON object (dict, compact, sorted for stable tokens) or raw JSON text (str or bytes,
    taken verbatim: duplicate members, odd spacing) as one base64url segment."""
    if isinstance(obj, dict):
        obj = json.dumps(obj, separators=(",", ":"), sort_keys=True)
    return b64url(obj)


def signing_input(header, payload):
    return segment(header) + "." + segment(payload)


def hs_signature(alg, key, data):
    """HMAC of data (str) under key (bytes or str, used as given: a PEM public key too)."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    return hmac.new(key, data.encode("ascii"), HS_HASHES[alg]).digest()


def hs_token(header, payload, key, alg=None):
    """A JWS signed with HMAC. alg defaults to header['alg'] (header may be raw JSON text, then
    alg must be given). key is used verbatim, which is what makes the confusion attack: pass the
    server's RSA public key PEM as the HMAC key."""
    if alg is None:
        alg = header["alg"]
    data = signing_input(header, payload)
    return data + "." + b64url(hs_signature(alg, key, data))


def asym_token(header, payload, private_key):
    """A JWS signed with an RSA (PKCS#1 v1.5) or EC private key from python3-cryptography, with
    the signature in JWS form (ES*: r || s, fixed width). header['alg'] picks the hash."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

    alg = header["alg"] if isinstance(header, dict) else None
    hash_alg = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    data = signing_input(header, payload)
    if alg.startswith("RS"):
        sig = private_key.sign(data.encode("ascii"), padding.PKCS1v15(), hash_alg)
    elif alg.startswith("PS"):
        sig = private_key.sign(data.encode("ascii"),
                               padding.PSS(mgf=padding.MGF1(hash_alg),
                                           salt_length=hash_alg.digest_size), hash_alg)
    elif alg.startswith("ES"):
        der = private_key.sign(data.encode("ascii"), ec.ECDSA(hash_alg))
        r, s = utils.decode_dss_signature(der)
        width = (private_key.curve.key_size + 7) // 8
        sig = r.to_bytes(width, "big") + s.to_bytes(width, "big")
    else:
        raise ValueError("asym_token: unsupported alg %r" % alg)
    return data + "." + b64url(sig)


def unsigned_token(header, payload, signature=""):
    """header.payload.signature with the given (possibly empty) signature text: alg none and
    friends."""
    return signing_input(header, payload) + "." + signature


def with_segments(token, n):
    """The token cut or padded to n dot-separated segments (2 segments: no signature part at
    all; 5 segments: a JWE-shaped token)."""
    parts = token.split(".")
    while len(parts) < n:
        parts.append(b64url(b"extra"))
    return ".".join(parts[:n])


def flip_signature(token):
    """The token with one character in the middle of its signature changed (a character in the
    middle, so the decoded bytes change whatever the padding bits of the last character)."""
    head, sig = token.rsplit(".", 1)
    i = len(sig) // 2
    c = "A" if sig[i] != "A" else "B"
    return head + "." + sig[:i] + c + sig[i + 1:]


def decode_unverified(token):
    """(header, payload) as dicts, without checking anything: for asserting on what the server
    issued before verifying it independently."""
    h, p, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))
