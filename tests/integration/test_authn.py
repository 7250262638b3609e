"""Authentication end to end (issue 5), through the real bastiond and a stock gRPC client.

Every credential is made by something other than the server: valid JWTs by Debian's python3-jwt
(HS256/384/512, RS256/384/512, ES256/384/512), hostile ones byte by byte (jwt_forge.py), API
keys from os.urandom, password hashes by the `openssl kdf` command line (as
scripts/gen-dev-secrets.sh does). Each refusal must be UNAUTHENTICATED with the one generic,
helpful message of its class; the precise reason must reach the audit record (that proves the
refusal happened for the right reason, not by accident), and no secret may appear in any
message, in the server log or in the audit log.

What is covered elsewhere, not repeated here: a certificate from another CA, an expired one and
a revoked one are refused at the TLS handshake (test_refusals.py:
test_cert_from_another_ca_gets_unknown_ca_48, test_expired_cert_gets_certificate_expired_45,
test_revoked_cert_gets_certificate_revoked_44).

Servers: `main` (API keys, users, external issuers, our signing key, a certificate mapping, a
policy of our own; leeway 0 so an issued token expires on time), `strict` (require_token,
client_auth optional, small per-address limits on bad credentials and failed logins), and, each
for one test, `optional` (no certificate required; a scrypt pool of 1 with a queue of 1),
`rotation` (API keys only, reloaded under load) and `dev` (the `auth:` section of
configs/bastion.yaml over what scripts/gen-dev-secrets.sh makes). Loopback addresses other than
127.0.0.1 (127.0.0.2-6) stand for other clients where a test needs its own source address.
Timing of wrong API keys and unknown users is measured in the unit tests (tests/unit/auth/),
where network noise does not drown it.

A token issued at the start with the shortest lifetime (60 s) is checked again at the end, after
it expired: the file sleeps only for what is left of that minute.

Run with Debian's /usr/bin/python3 and BASTION_SRC / BASTION_BUILD set."""

import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
import jwt as pyjwt  # noqa: E402  (Debian's python3-jwt: the independent signer)
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

import harness  # noqa: E402
import jwt_forge as forge  # noqa: E402

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
MSG_KEY = "invalid API key"
MSG_TOKEN = "invalid or expired token"
MSG_CONFLICT = "send exactly one credential: one authorization header or one x-api-key header"
MSG_SCHEME = "unsupported authorization header: use 'Bearer <token>' or 'ApiKey <key>'"
MSG_PS = ("unsupported token algorithm: PS* is not available (libjwt 1.10.2); use ES*, RS* or "
          "HS*")
MSG_LOGIN = "invalid username or password"
MSG_NEED_TOKEN = "an API key or a token is required"

IDP = "https://idp.e2e.test"
TRUSTED = "https://trusted.e2e.test"
AUD = "bastion-e2e"
OWN_ISS = "bastion-e2e-own"
OWN_AUD = "bastion-e2e-api"
SPIFFE = "spiffe://bastion.local/user/"

msgs = None
S = None             # the secrets of the main server (class Secrets)
main_srv = None
strict_srv = None
T0 = time.monotonic()
SECRETS = []         # every secret the servers were given or issued: never in logs or messages
SEEN_MESSAGES = []   # every grpc-message a refusal carried
TEMP_DIRS = []       # directories of secrets made here, removed at the end whatever happened


def mkdtemp(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    TEMP_DIRS.append(d)
    return d


def now():
    return int(time.time())


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def write_secret(path, data, mode=0o600):
    """Writes a file atomically (temp file + rename, as an operator or Kubernetes does)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def new_api_key():
    key = "bst_" + forge.b64url(os.urandom(32))
    SECRETS.append(key)
    return key


def sha256_hex(s):
    return hashlib.sha256(s.encode("ascii")).hexdigest()


def scrypt_hash(password):
    """The users-file hash of password, made by the openssl command line (OpenSSL 3 `kdf`), in
    the format `bastion users hash` writes: $scrypt$ln=15,r=8,p=1$<salt>$<hash>."""
    salt = os.urandom(16)
    out = subprocess.run(
        ["openssl", "kdf", "-binary", "-keylen", "32", "-kdfopt", "pass:" + password,
         "-kdfopt", "hexsalt:" + salt.hex(), "-kdfopt", "n:32768", "-kdfopt", "r:8",
         "-kdfopt", "p:1", "-kdfopt", "maxmem_bytes:67108864", "SCRYPT"],
        check=True, stdout=subprocess.PIPE).stdout
    return "$scrypt$ln=15,r=8,p=1$%s$%s" % (forge.b64url(salt), forge.b64url(out))


def pem_private(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def pem_public(k):
    return k.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)


def yaml_list(items):
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def api_keys_yaml(entries):
    """entries: dicts with id, key and the optional fields of an API key entry."""
    out = ["keys:"]
    for e in entries:
        out.append("  - id: %s" % e["id"])
        out.append('    sha256: "%s"' % sha256_hex(e["key"]))
        out.append("    identity: %s" % json.dumps(e["identity"]))
        for k in ("groups", "permissions"):
            if k in e:
                out.append("    %s: %s" % (k, yaml_list(e[k])))
        if "tenant" in e:
            out.append("    tenant: %s" % json.dumps(e["tenant"]))
        if "enabled" in e:
            out.append("    enabled: %s" % ("true" if e["enabled"] else "false"))
        for k in ("not_before", "expires_at"):
            if k in e:
                out.append('    %s: "%s"' % (k, rfc3339(e[k])))
    return "\n".join(out) + "\n"


class Secrets:
    """Keys, users and issuers of the main server, written to a 0700 directory."""

    def __init__(self):
        self.dir = mkdtemp("bastion-authn-")
        os.chmod(self.dir, 0o700)
        t = now()
        # API keys.
        self.k_alice = new_api_key()
        self.k_disabled = new_api_key()
        self.k_expired = new_api_key()
        self.k_future = new_api_key()
        self.k_ci = new_api_key()
        self.k_unknown = new_api_key()    # never written to the file
        self.k_query = "bst_" + forge.b64url(os.urandom(32))   # see the query-string test
        self.alice_key_expiry = t + 30 * 86400
        self.keys = [
            {"id": "alice-1", "key": self.k_alice, "identity": "alice", "groups": ["devs"],
             "expires_at": self.alice_key_expiry},
            {"id": "gone-1", "key": self.k_disabled, "identity": "alice", "enabled": False},
            {"id": "old-1", "key": self.k_expired, "identity": "alice",
             "not_before": t - 7200, "expires_at": t - 3600},
            {"id": "later-1", "key": self.k_future, "identity": "alice",
             "not_before": t + 3600},
            {"id": "ci-1", "key": self.k_ci, "identity": "ci-bot", "groups": ["ci"],
             "tenant": "acme", "permissions": ["k8s:pods:delete"]},
            {"id": "query-1", "key": self.k_query, "identity": "query-key-owner"},
        ]
        self.api_keys = self.path("api-keys.yaml")
        write_secret(self.api_keys, api_keys_yaml(self.keys))
        # Users (scrypt through the openssl CLI).
        self.passwords = {u: forge.b64url(os.urandom(15)) for u in ("alice", "bob", "carol")}
        SECRETS.extend(self.passwords.values())
        users = ["users:"]
        for u, groups, tenant, enabled in (("alice", ["operators"], "team-a", True),
                                            ("bob", ["devs"], None, True),
                                            ("carol", [], None, False)):
            users.append("  - username: %s" % u)
            users.append('    password_hash: "%s"' % scrypt_hash(self.passwords[u]))
            if groups:
                users.append("    groups: %s" % yaml_list(groups))
            if tenant:
                users.append("    tenant: %s" % tenant)
            users.append("    enabled: %s" % ("true" if enabled else "false"))
        self.users = self.path("users.yaml")
        write_secret(self.users, "\n".join(users) + "\n")
        # Our signing key (ES256).
        self.own_key = ec.generate_private_key(ec.SECP256R1())
        self.signing_key = self.path("token-signing.pem")
        write_secret(self.signing_key, pem_private(self.own_key))
        SECRETS.append(pem_private(self.own_key).decode().split("\n")[1])
        # External issuer: one key per algorithm, each pinned by its kid.
        self.hs = {alg: os.urandom(n) for alg, n in (("HS256", 32), ("HS384", 48),
                                                       ("HS512", 64))}
        for v in self.hs.values():
            SECRETS.append(forge.b64url(v))
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_pub_pem = pem_public(self.rsa)
        self.ec = {"ES256": ec.generate_private_key(ec.SECP256R1()),
                   "ES384": ec.generate_private_key(ec.SECP384R1()),
                   "ES512": ec.generate_private_key(ec.SECP521R1())}
        self.trusted_key = ec.generate_private_key(ec.SECP256R1())
        keys = []
        for alg, secret in self.hs.items():
            f = "%s.key" % alg.lower()
            write_secret(self.path(f), forge.b64url(secret) + "\n")
            keys.append((alg.lower(), alg, f))
        write_secret(self.path("rsa.pub.pem"), self.rsa_pub_pem, 0o644)
        for alg in ("RS256", "RS384", "RS512"):
            keys.append((alg.lower(), alg, "rsa.pub.pem"))
        for alg, k in self.ec.items():
            f = "%s.pub.pem" % alg.lower()
            write_secret(self.path(f), pem_public(k), 0o644)
            keys.append((alg.lower(), alg, f))
        write_secret(self.path("trusted.pub.pem"), pem_public(self.trusted_key), 0o644)
        lines = ["issuers:",
                 '  - issuer: "%s"' % IDP,
                 '    audiences: ["%s", "other-api"]' % AUD,
                 '    identity_prefix: "idp:"',
                 "    trusted_permissions: false",
                 "    keys:"]
        for kid, alg, f in keys:
            lines.append('      - {kid: "%s", alg: %s, file: %s}' % (kid, alg, f))
        lines += ['  - issuer: "%s"' % TRUSTED,
                  '    audiences: ["%s"]' % AUD,
                  "    trusted_permissions: true",
                  "    keys:",
                  '      - {kid: "tr-1", alg: ES256, file: trusted.pub.pem}']
        self.issuers = self.path("issuers.yaml")
        write_secret(self.issuers, "\n".join(lines) + "\n", 0o644)
        self.denylist = self.path("jti-denylist.txt")
        write_secret(self.denylist, "# revoked\nrevoked-jti-1\n", 0o644)
        self.certmap = self.path("certificate-identities.yaml")
        write_secret(self.certmap,
                     'identities:\n  - certificate: "%sdeveloper"\n    name: dev-mapped\n'
                     "    groups: [mapped-devs]\n    tenant: acme\n" % SPIFFE, 0o644)
        self.policy = self.path("policy.yaml")
        write_secret(self.policy, POLICY, 0o644)

    def path(self, name):
        return os.path.join(self.dir, name)

    def auth_section(self, login=None, **over):
        """The `auth:` lines for the main server; keyword arguments override top-level keys,
        login overrides keys of `login:`."""
        top = {"api_keys": self.api_keys, "users": self.users, "jwt_issuers": self.issuers,
               "jti_denylist": self.denylist, "certificate_identities": self.certmap,
               "jwt_leeway": "0s", "failed_credentials_per_address": "0"}
        top.update(over)
        lines = ["auth:"] + ["  %s: %s" % (k, v) for k, v in top.items()]
        lines += ["  token:",
                  "    issuer: %s" % OWN_ISS,
                  "    audience: %s" % OWN_AUD,
                  "    signing_key: %s" % self.signing_key,
                  "    alg: ES256",
                  "  login:"]
        lg = {"max_failures_per_user": 3, "max_failures_per_address": 100, "lockout": "2m"}
        lg.update(login or {})
        lines += ["    %s: %s" % (k, v) for k, v in lg.items()]
        return lines


# Our own policy: no binding names a certificate, so what a call may do comes from the token
# or key identity, its groups, tenant and carried permissions only.
POLICY = """\
roles:
  - name: reader
    permissions: [k8s:pods:list]
    namespaces: [default]
  - name: deployer
    permissions: [k8s:deployments:scale]
    namespaces: [staging]
bindings:
  - name: alice-reads
    subjects: [{user: alice}]
    roles: [reader]
  - name: operators-deploy
    subjects: [{group: operators}]
    roles: [deployer]
tenants:
  - name: acme
    namespaces: ["acme-*"]
  - name: team-a
    namespaces: [staging, "team-a-*"]
deny:
  - name: protect-acme-prod
    permissions: [k8s:pods:delete]
    namespaces: [acme-prod]
"""


# ---- calling -------------------------------------------------------------------------------


_channels = {}


def channel(srv, name):
    k = (srv.port, name)
    if k not in _channels:
        _channels[k] = harness.grpc_channel(srv.port, name)
    return _channels[k]


def close_channels():
    for ch in _channels.values():
        ch.close()
    _channels.clear()


def request_id_of(md):
    for k, v in md or ():
        if k == "x-request-id":
            return v
    return None


def call(srv, method, request=None, cert="viewer", md=None, timeout=15):
    """Calls method; returns (response, request id) or raises grpc.RpcError."""
    service = "Auth" if method in ("IssueToken", "WhoAmI", "CanI") else "Mcp"
    path = "/bastion.v1.%s/%s" % (service, method)
    if method == "Check":
        path, req_t, resp_t = ("/grpc.health.v1.Health/Check", "grpc.health.v1.HealthCheckRequest",
                               "grpc.health.v1.HealthCheckResponse")
    else:
        req_t = "bastion.v1.%sRequest" % method
        resp_t = "bastion.v1.%sResponse" % method
        if method == "WhoAmI":
            req_t, resp_t = "bastion.v1.WhoAmIRequest", "bastion.v1.WhoAmIResponse"
        if method == "CanI":
            req_t, resp_t = "bastion.v1.CanIRequest", "bastion.v1.CanIResponse"
    req = msgs[req_t](**(request or {}))
    resp, c = harness.unary(channel(srv, cert), msgs, path, req, resp_t, timeout=timeout,
                            metadata=md, with_call=True)
    return resp, request_id_of(c.initial_metadata())


def whoami(srv, md=None, cert="viewer"):
    return call(srv, "WhoAmI", None, cert, md)[0].principal


def refused(srv, method, md, code=UNAUTH, request=None, cert="viewer"):
    """Calls and expects a refusal. Returns (message, request id)."""
    try:
        call(srv, method, request, cert, md)
    except grpc.RpcError as e:
        assert e.code() == code, "expected %s, got %s: %s" % (code, e.code(), e.details())
        SEEN_MESSAGES.append(e.details() or "")
        return e.details(), request_id_of(e.trailing_metadata()) or request_id_of(
            e.initial_metadata())
    raise AssertionError("expected %s, the call succeeded (metadata %r)" % (code, md))


def bearer(tok):
    return [("authorization", "Bearer " + tok)]


def audit_records(srv):
    """Every audit record of srv, through `bastion-audit cat` (blocking mode: a call's record is
    durable before its response)."""
    out = subprocess.run([os.path.join(harness.BUILD, "bin", "bastion-audit"), "cat", "--dir",
                          srv.audit_dir], check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE).stdout.decode("utf-8")
    return [json.loads(line) for line in out.splitlines() if line.strip()], out


def audit_details(srv):
    """request id -> the details of its records (authentication event and request record)."""
    recs, _ = audit_records(srv)
    by_id = {}
    for r in recs:
        if r.get("request_id"):
            by_id.setdefault(r["request_id"], []).append(r.get("detail", ""))
    return by_id


# ---- tokens from the independent signer ------------------------------------------------------


def claims(sub="carol", iss=IDP, aud=AUD, ttl=300, **extra):
    t = now()
    c = {"iss": iss, "sub": sub, "aud": aud, "iat": t, "nbf": t, "exp": t + ttl}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def pyjwt_token(alg, payload=None, kid=None):
    """A valid token made by python3-jwt with the main issuer's key for alg."""
    payload = payload if payload is not None else claims()
    kid = kid or alg.lower()
    if alg.startswith("HS"):
        key = S.hs[alg]
    elif alg.startswith("RS"):
        key = S.rsa
    else:
        key = S.ec[alg]
    tok = pyjwt.encode(payload, key, algorithm=alg, headers={"kid": kid})
    SECRETS.append(tok)
    return tok


def hs_forged(payload, header=None, key=None, alg="HS256"):
    """An HS token built by hand (jwt_forge); by default correctly signed with the server's
    HS key, so only the one thing a case changes can make it fail."""
    header = header if header is not None else {"alg": alg, "kid": alg.lower(), "typ": "JWT"}
    tok = forge.hs_token(header, payload, key if key is not None else S.hs[alg], alg=alg)
    SECRETS.append(tok)
    return tok


# ---- raw HTTP/2 (what grpcio cannot send) ----------------------------------------------------


def raw_grpc(port, path, body=b"", headers=(), name="viewer", source="127.0.0.1", timeout=10,
             barrier=None):
    """One gRPC request over a fresh TLS connection from the given loopback source address,
    with python3-h2 (barrier: a threading.Barrier waited on after the handshake, so parallel
    requests leave together). Returns (grpc-status, grpc-message, response headers as a dict,
    response body)."""
    import ssl
    import urllib.parse

    import h2.config
    import h2.connection
    import h2.events

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(harness.certs(), "ca.crt"))
    c, k = harness.cert(name)
    ctx.load_cert_chain(c, k)
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                   source_address=(source, 0))
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    if barrier is not None:
        barrier.wait(timeout)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", "https"), (":path", path),
                            (":authority", "localhost"), ("content-type", "application/grpc"),
                            ("te", "trailers")] + list(headers))
    conn.send_data(sid, struct_frame(body), end_stream=True)
    sock.sendall(conn.data_to_send())
    got, data, ended = {}, b"", False
    deadline = time.monotonic() + timeout
    try:
        while not ended and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            for ev in conn.receive_data(chunk):
                if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    got.update(dict(ev.headers))
                elif isinstance(ev, h2.events.DataReceived):
                    data += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    ended = True
            sock.sendall(conn.data_to_send())
    finally:
        sock.close()
    status = int(got["grpc-status"]) if "grpc-status" in got else None
    message = urllib.parse.unquote(got.get("grpc-message", ""))
    return status, message, got, data


def struct_frame(body):
    return bytes([0]) + len(body).to_bytes(4, "big") + body


# ---- the issued token that must expire before the end ---------------------------------------

early = {}


def test_issue_token_early_for_the_expiry_check():
    """Logs in with the shortest lifetime the server grants (60 s: ttl_seconds 1 is raised to
    the floor) and uses the token once, so the verified-token cache holds it; the last test
    checks it is refused once expired, cache or not."""
    resp, _ = call(main_srv, "IssueToken", {"username": "bob", "password": S.passwords["bob"],
                                            "ttl_seconds": 1})
    SECRETS.append(resp.token)
    _, p = forge.decode_unverified(resp.token)
    assert p["exp"] - p["iat"] == 60, p
    early["token"], early["exp"] = resp.token, resp.expires_at_unix
    assert resp.expires_at_unix == p["exp"], (resp.expires_at_unix, p)
    assert whoami(main_srv, bearer(resp.token)).name == "bob"


# ---- valid credentials: principal rules -----------------------------------------------------


def test_valid_jwt_for_every_algorithm_from_python_jwt():
    for alg in ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
                "ES512"):
        tok = pyjwt_token(alg, claims(sub="carol-" + alg.lower(), groups=["g1", "g2"],
                                      tenant="acme"))
        p = whoami(main_srv, bearer(tok), cert="viewer")
        assert p.name == "idp:carol-" + alg.lower(), (alg, p)
        assert p.mechanism == 3, (alg, p)   # AUTH_MECHANISM_JWT
        assert list(p.groups) == ["g1", "g2"] and p.tenant == "acme", (alg, p)
        assert p.certificate_identity == SPIFFE + "viewer", (alg, p)


def test_token_identity_wins_and_the_certificate_identity_is_kept():
    tok = pyjwt_token("ES256", claims(sub="alice-jwt"))
    exp = forge.decode_unverified(tok)[1]["exp"]
    p = whoami(main_srv, bearer(tok), cert="operator")
    assert p.name == "idp:alice-jwt" and p.mechanism == 3, p
    assert p.certificate_identity == SPIFFE + "operator", p
    assert re.fullmatch(r"[0-9a-f]{64}", p.certificate_fingerprint_sha256), p
    assert p.expires_at_unix == exp, (p.expires_at_unix, exp)
    # API key: identity, groups and expiry of the key entry; the certificate still shown.
    for md in ([("x-api-key", S.k_alice)], [("authorization", "Bearer " + S.k_alice)],
               [("authorization", "ApiKey " + S.k_alice)], [("authorization", "apikey " +
                                                             S.k_alice)]):
        p = whoami(main_srv, md, cert="operator")
        assert p.name == "alice" and p.mechanism == 2, (md[0][0], p)
        assert list(p.groups) == ["devs"] and not p.tenant, p
        assert p.expires_at_unix == S.alice_key_expiry, p
        assert p.certificate_identity == SPIFFE + "operator", p
    # No credential: the certificate identity, mapped through certificate_identities.
    p = whoami(main_srv, None, cert="operator")
    assert p.name == SPIFFE + "operator" and p.mechanism == 1, p
    p = whoami(main_srv, None, cert="developer")
    assert (p.name, p.mechanism, list(p.groups), p.tenant) == (
        "dev-mapped", 1, ["mapped-devs"], "acme"), p
    assert p.certificate_identity == SPIFFE + "developer", p
    # Groups and tenant come from the credential, not from the certificate mapping.
    p = whoami(main_srv, [("x-api-key", S.k_alice)], cert="developer")
    assert (p.name, list(p.groups), p.tenant) == ("alice", ["devs"], ""), p
    assert p.certificate_identity == SPIFFE + "developer", p


def can_i(md, permission, namespace=None, cert="viewer"):
    req = {"permission": permission}
    if namespace is not None:
        req["namespace"] = namespace
    r = call(main_srv, "CanI", req, cert, md)[0]
    return r.allowed, r.rule


def test_authorization_sees_the_token_identity_not_the_certificate():
    # Our policy binds user alice (reader in default) and group operators (deployer in staging).
    key = [("x-api-key", S.k_alice)]
    assert can_i(key, "k8s:pods:list", "default", cert="operator") == (
        True, "role:reader via binding:alice-reads")
    assert can_i(None, "k8s:pods:list", "default", cert="operator")[0] is False
    assert can_i(key, "k8s:pods:list", "staging", cert="operator")[0] is False


def test_api_key_permissions_reach_only_as_far_as_the_policy_says():
    key = [("x-api-key", S.k_ci)]   # carries k8s:pods:delete, tenant acme
    p = whoami(main_srv, key)
    assert (p.name, list(p.permissions), p.tenant) == ("ci-bot", ["k8s:pods:delete"], "acme"), p
    assert can_i(key, "k8s:pods:delete", "acme-web") == (
        True, "carried:k8s:pods:delete via api_key")
    allowed, rule = can_i(key, "k8s:pods:delete", "default")     # outside the tenant
    assert not allowed and rule.startswith("tenant:acme"), rule
    allowed, rule = can_i(key, "k8s:pods:delete", "acme-prod")   # a deny rule beats it
    assert not allowed and rule == "deny:protect-acme-prod", rule
    allowed, rule = can_i(key, "k8s:pods:list", "acme-web")      # not carried, not bound
    assert not allowed, rule
    allowed, rule = can_i(key, "k8s:pods:delete")                # never at cluster scope
    assert not allowed, rule


def test_token_permissions_only_from_a_trusted_issuer():
    perms = {"permissions": ["k8s:pods:delete"], "tenant": "acme"}
    untrusted = pyjwt_token("ES256", claims(sub="mallory", **perms))
    p = whoami(main_srv, bearer(untrusted))
    assert p.name == "idp:mallory" and list(p.permissions) == [], p
    assert can_i(bearer(untrusted), "k8s:pods:delete", "acme-web")[0] is False
    tok = pyjwt.encode(claims(sub="deployer", iss=TRUSTED, **perms), S.trusted_key,
                       algorithm="ES256", headers={"kid": "tr-1"})
    SECRETS.append(tok)
    p = whoami(main_srv, bearer(tok))
    assert p.name == "deployer" and list(p.permissions) == ["k8s:pods:delete"], p
    allowed, rule = can_i(bearer(tok), "k8s:pods:delete", "acme-web")
    assert allowed and rule.startswith("carried:k8s:pods:delete via "), rule
    # Our own issuer never carries permissions: a token correctly signed with our own key (the
    # test holds it) that claims some gets none.
    kid = forge.decode_unverified(early["token"])[0]["kid"]
    own = pyjwt.encode(claims(sub="self-made", iss=OWN_ISS, aud=OWN_AUD, permissions=["k8s:*"],
                              tenant="acme"), S.own_key, algorithm="ES256", headers={"kid": kid})
    SECRETS.append(own)
    p = whoami(main_srv, bearer(own))
    assert p.name == "self-made" and list(p.permissions) == [], p
    assert can_i(bearer(own), "k8s:pods:delete", "acme-web")[0] is False


# ---- the attack table ------------------------------------------------------------------------


def attack_cases():
    """(name, metadata, expected message, regex on the audit detail)."""
    c = claims()
    good = hs_forged(c)
    cases = []
    # alg none in every spelling, with and without a signature.
    for alg in ("none", "NoNe", "NONE", "nOnE"):
        h = {"alg": alg, "kid": "hs256", "typ": "JWT"}
        cases.append(("alg %s, empty signature" % alg, bearer(forge.unsigned_token(h, c)),
                      MSG_TOKEN, r"empty signature"))
        sig = forge.b64url(forge.hs_signature("HS256", S.hs["HS256"],
                                              forge.signing_input(h, c)))
        cases.append(("alg %s, with a signature" % alg,
                       bearer(forge.unsigned_token(h, c, sig)), MSG_TOKEN,
                       r"alg none is never accepted"))
    # HS/RS confusion: HMAC keyed with the server's RSA public key PEM, under the RS kid, and
    # under an HS kid (the PEM is not that key either).
    for kid in ("rs256", "rs512"):
        h = {"alg": "HS256", "kid": kid, "typ": "JWT"}
        cases.append(("HS256 signed with the RSA public key PEM, kid %s" % kid,
                      bearer(forge.hs_token(h, c, S.rsa_pub_pem)), MSG_TOKEN,
                      r"kid pins RS\d+ but the token says HS256"))
    cases.append(("HS256 signed with the RSA public key PEM, kid hs256",
                  bearer(forge.hs_token({"alg": "HS256", "kid": "hs256"}, c, S.rsa_pub_pem)),
                  MSG_TOKEN, r"signature does not verify"))
    # The same attack on our own tokens: HS256 keyed with our ES256 public key (anyone may have
    # it: it is what `bastion keys jwks` publishes), under our own kid, iss and aud.
    own_kid = forge.decode_unverified(early["token"])[0]["kid"]
    own_pub = S.own_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    cases.append(("HS256 signed with our own ES256 public key PEM",
                  bearer(forge.hs_token({"alg": "HS256", "kid": own_kid},
                                        claims(sub="admin", iss=OWN_ISS, aud=OWN_AUD), own_pub)),
                  MSG_TOKEN, r"kid pins ES256 but the token says HS256"))
    # Pinned algorithm: a correct RS384 signature under the RS256 kid.
    cases.append(("RS384 token under the RS256 kid", bearer(pyjwt_token("RS384", c, kid="rs256")),
                  MSG_TOKEN, r"kid pins RS256 but the token says RS384"))
    cases.append(("HS256 signed with an empty key", bearer(hs_forged(c, key=b"")), MSG_TOKEN,
                  r"signature does not verify"))
    for kid in ("../../dev/null", "/dev/null", "unknown-kid"):
        cases.append(("kid %s" % kid,
                      bearer(hs_forged(c, {"alg": "HS256", "kid": kid, "typ": "JWT"})),
                      MSG_TOKEN, r"issuer has no key with kid"))
    cases.append(("no kid", bearer(hs_forged(c, {"alg": "HS256", "typ": "JWT"})), MSG_TOKEN,
                  r"no kid"))
    for param in ("jku", "x5u", "jwk"):
        h = {"alg": "HS256", "kid": "hs256", param: "https://attacker.invalid/k"}
        cases.append(("header %s" % param, bearer(hs_forged(c, h)), MSG_TOKEN,
                      r"'%s' is not accepted" % param))
    cases.append(("missing exp", bearer(hs_forged({k: v for k, v in c.items() if k != "exp"})),
                  MSG_TOKEN, r"no exp"))
    cases.append(("exp as a string", bearer(hs_forged(dict(c, exp=str(c["exp"])))), MSG_TOKEN,
                  r"exp is not an integer"))
    cases.append(("future nbf", bearer(hs_forged(dict(c, nbf=now() + 600))), MSG_TOKEN,
                  r"not valid for another"))
    cases.append(("future iat", bearer(hs_forged(dict(c, iat=now() + 600))), MSG_TOKEN,
                  r"in the future \(iat\)"))
    cases.append(("expired", bearer(pyjwt_token("ES256", claims(ttl=-5))), MSG_TOKEN,
                  r"token expired"))
    cases.append(("lifetime over the maximum", bearer(hs_forged(dict(c, exp=now() + 3 * 86400))),
                  MSG_TOKEN, r"exceeds the maximum"))
    cases.append(("wrong iss", bearer(pyjwt_token("HS256", claims(iss="https://evil.test"))),
                  MSG_TOKEN, r"unknown issuer"))
    cases.append(("iss of another configured issuer", bearer(pyjwt_token(
        "HS256", claims(iss=TRUSTED))), MSG_TOKEN, r"issuer has no key with kid"))
    cases.append(("wrong aud (string)", bearer(pyjwt_token("HS256", claims(aud="not-us"))),
                  MSG_TOKEN, r"audience"))
    cases.append(("wrong aud (array)", bearer(pyjwt_token("HS256", claims(aud=["a", "b"]))),
                  MSG_TOKEN, r"audience"))
    cases.append(("missing aud", bearer(pyjwt_token("HS256", claims(aud=None))), MSG_TOKEN,
                  r"audience"))
    cases.append(("aud array with a non-string", bearer(hs_forged(dict(c, aud=[AUD, 7]))),
                  MSG_TOKEN, r"audience"))
    cases.append(("aud as a prefix of ours", bearer(hs_forged(dict(c, aud=AUD[:-1]))),
                  MSG_TOKEN, r"audience"))
    cases.append(("missing sub", bearer(hs_forged({k: v for k, v in c.items() if k != "sub"})),
                  MSG_TOKEN, r"identity claim 'sub'"))
    cases.append(("revoked jti", bearer(hs_forged(dict(c, jti="revoked-jti-1"))), MSG_TOKEN,
                  r"denylist"))
    # Duplicate members, correctly signed: only the duplicate can make it fail.
    body = json.dumps(c, separators=(",", ":"))
    dup = body[:-1] + ',"sub":"admin"}'
    cases.append(("duplicate sub", bearer(hs_forged(dup)), MSG_TOKEN, r"duplicate members"))
    dup_h = '{"alg":"HS256","kid":"hs256","kid":"rs256"}'
    cases.append(("duplicate kid in the header", bearer(hs_forged(c, dup_h)), MSG_TOKEN,
                  r"duplicate members"))
    cases.append(("bad signature", bearer(forge.flip_signature(good)), MSG_TOKEN,
                  r"signature does not verify|not canonical"))
    other_sig = hs_forged(dict(c, sub="x")).rsplit(".", 1)[1]
    cases.append(("signature of another token", bearer(good.rsplit(".", 1)[0] + "." + other_sig),
                  MSG_TOKEN, r"signature does not verify"))
    cases.append(("truncated token", bearer(good[:len(good) - 10]), MSG_TOKEN,
                  r"signature does not verify|not canonical"))
    cases.append(("truncated in the payload", bearer(good[:len(good) // 2]), MSG_TOKEN,
                  r"segments"))
    cases.append(("2 segments", bearer(forge.with_segments(good, 2)), MSG_TOKEN,
                  r"2 segments"))
    cases.append(("5 segments", bearer(forge.with_segments(good, 5)), MSG_TOKEN,
                  r"more than three segments"))
    cases.append(("empty signature segment", bearer(forge.with_segments(good, 2) + "."),
                  MSG_TOKEN, r"empty signature"))
    cases.append(("padding in the token", bearer(good + "=="), MSG_TOKEN, r"outside base64url"))
    cases.append(("PS256 token", bearer(forge.asym_token({"alg": "PS256", "kid": "rs256"}, c,
                                                         S.rsa)), MSG_PS, r"PS\* algorithms"))
    cases.append(("HS256 token over 8 KiB", bearer(hs_forged(dict(c, pad="x" * 9000))),
                  MSG_TOKEN, r"over 8192 bytes"))
    # Two credentials.
    cases.append(("a JWT plus an API key", bearer(good) + [("x-api-key", S.k_alice)],
                  MSG_CONFLICT, r"1 authorization and 1 x-api-key"))
    cases.append(("two authorization headers", bearer(good) + bearer(good), MSG_CONFLICT,
                  r"2 authorization and 0 x-api-key"))
    cases.append(("two x-api-key headers", [("x-api-key", S.k_alice), ("x-api-key", S.k_ci)],
                  MSG_CONFLICT, r"0 authorization and 2 x-api-key"))
    cases.append(("Basic scheme", [("authorization", "Basic YWxpY2U6cHc=")], MSG_SCHEME,
                  r"neither Bearer nor ApiKey"))
    cases.append(("Bearer with nothing", [("authorization", "Bearer")], MSG_SCHEME,
                  r"neither Bearer nor ApiKey"))
    cases.append(("Bearer with a space inside", [("authorization", "Bearer abc def")],
                  MSG_SCHEME, r"space or a control"))
    # API keys: one message for unknown, disabled, expired and not yet valid.
    for name, key, why in (("unknown", S.k_unknown, r"unknown API key"),
                           ("disabled", S.k_disabled, r"'gone-1' is disabled"),
                           ("expired", S.k_expired, r"'old-1' expired"),
                           ("not yet valid", S.k_future, r"'later-1' is not valid before")):
        for hdr in ("x-api-key", "Bearer", "ApiKey"):
            md = [("x-api-key", key)] if hdr == "x-api-key" else [("authorization",
                                                                   hdr + " " + key)]
            cases.append(("API key %s (%s)" % (name, hdr), md, MSG_KEY, why))
    cases.append(("API key with one character changed", [("x-api-key", S.k_alice[:-1] + (
        "A" if S.k_alice[-1] != "A" else "B"))], MSG_KEY, r"unknown API key"))
    cases.append(("API key malformed", [("x-api-key", "bst_short")], MSG_KEY, r"is not 'bst_'"))
    return cases


def test_every_attack_is_unauthenticated_with_its_generic_message():
    ids = []
    for name, md, message, why in attack_cases():
        try:
            got, rid = refused(main_srv, "WhoAmI", md)
        except AssertionError as e:
            raise AssertionError("%s: %s" % (name, e)) from None
        assert got == message, "%s: message %r, expected %r" % (name, got, message)
        assert rid, "%s: no x-request-id" % name
        ids.append((name, rid, why))
    details = audit_details(main_srv)
    for name, rid, why in ids:
        d = " | ".join(details.get(rid, []))
        assert re.search(why, d), "%s: audit detail %r does not match %r" % (name, d, why)
    # The attack left the server serving: a valid token and a valid key still work.
    assert whoami(main_srv, bearer(pyjwt_token("HS256"))).name == "idp:carol"
    assert whoami(main_srv, [("x-api-key", S.k_alice)]).name == "alice"
    print("  %d hostile credentials refused, each for its own reason" % len(ids))


def test_forged_tokens_are_valid_when_nothing_is_wrong():
    """The control of the table: the same hand-built path, nothing changed, is accepted, so the
    refusals above are caused by what each case changes."""
    c = claims(sub="forged")
    assert whoami(main_srv, bearer(hs_forged(c))).name == "idp:forged"
    assert whoami(main_srv, bearer(hs_forged(json.dumps(c)))).name == "idp:forged"
    assert whoami(main_srv, bearer(forge.asym_token({"alg": "RS256", "kid": "rs256"}, c,
                                                    S.rsa))).name == "idp:forged"
    assert whoami(main_srv, bearer(forge.asym_token({"alg": "ES384", "kid": "es384"}, c,
                                                    S.ec["ES384"]))).name == "idp:forged"


def sized_token(target):
    """A correctly signed HS256 token of exactly target bytes."""
    c = claims(sub="big")
    for spaces in range(3):   # the header's length moves the total by other steps
        h = '{"alg":"HS256",%s"kid":"hs256"}' % (" " * spaces)
        n = 0
        while True:
            tok = forge.hs_token(h, dict(c, pad="p" * n), S.hs["HS256"], alg="HS256")
            if len(tok) == target:
                return tok
            if len(tok) > target:
                break
            n += max(1, (target - len(tok)) * 3 // 4 - 2)
    raise AssertionError("no token of %d bytes" % target)


def test_token_size_limit_is_8_kib_exactly():
    ok = sized_token(8192)
    SECRETS.append(ok)
    assert whoami(main_srv, bearer(ok)).name == "idp:big"
    big = sized_token(8193)
    SECRETS.append(big)
    msg, _ = refused(main_srv, "WhoAmI", bearer(big))
    assert msg == MSG_TOKEN, msg


def test_api_key_in_a_query_string_is_unimplemented_and_never_echoed():
    """gRPC has no query strings: a :path carrying one is no method. The key (a valid one) must
    not come back to the caller, nor reach the server log or the audit log. It is kept out of
    SECRETS so that this test alone reports a leak of it."""
    key = S.k_query
    for path in ("/bastion.v1.Auth/WhoAmI?api_key=" + key,
                 "/bastion.v1.Auth/WhoAmI?x-api-key=" + key + "&a=b",
                 "/bastion.v1.Auth/WhoAmI?" + key):
        status, message, headers, _ = raw_grpc(main_srv.port, path)
        assert status == 12, (status, message)
        assert message == "unknown method", message
        assert key not in json.dumps(headers), headers
    assert whoami(main_srv, [("x-api-key", key)]).name == "query-key-owner"
    in_log = leaks(main_srv.logs(), [key])
    in_audit = leaks(audit_records(main_srv)[1], [key])
    assert not in_log and not in_audit, (
        "the API key sent in the URL reached the server log (%d lines) and the audit log (%d "
        "records):\n%s" % (len(in_log), len(in_audit), "\n".join(in_log[:1] + in_audit[:1])))


# ---- IssueToken --------------------------------------------------------------------------


def test_issue_token_then_whoami_as_that_user():
    t0 = now()
    resp, _ = call(main_srv, "IssueToken", {"username": "alice",
                                            "password": S.passwords["alice"]}, cert="viewer")
    tok = resp.token
    SECRETS.append(tok)
    assert resp.token_type == "Bearer", resp
    # Verified independently: python3-jwt with the public half of the signing key.
    pub = S.own_key.public_key()
    c = pyjwt.decode(tok, pub, algorithms=["ES256"], audience=OWN_AUD, issuer=OWN_ISS)
    h, _ = forge.decode_unverified(tok)
    assert h["alg"] == "ES256" and h.get("kid"), h
    assert c["sub"] == "alice" and c["groups"] == ["operators"] and c["tenant"] == "team-a", c
    assert c["exp"] - c["iat"] == 900 and t0 - 2 <= c["iat"] <= now() + 1, c   # 15 min default
    assert re.fullmatch(r"[0-9a-f]{32}", c["jti"]), c
    assert resp.expires_at_unix == c["exp"], (resp.expires_at_unix, c)
    p = whoami(main_srv, bearer(tok), cert="operator")
    assert (p.name, p.mechanism, list(p.groups), p.tenant) == ("alice", 3, ["operators"],
                                                               "team-a"), p
    assert p.expires_at_unix == c["exp"], p
    assert p.certificate_identity == SPIFFE + "operator", p
    # The token's identity is what the policy sees: user alice, group operators.
    assert can_i(bearer(tok), "k8s:deployments:scale", "staging", cert="operator") == (
        True, "role:deployer via binding:operators-deploy")
    # A lifetime is capped at max_ttl (1 h by default).
    resp, _ = call(main_srv, "IssueToken", {"username": "alice",
                                            "password": S.passwords["alice"],
                                            "ttl_seconds": 10 ** 6})
    SECRETS.append(resp.token)
    _, c = forge.decode_unverified(resp.token)
    assert c["exp"] - c["iat"] == 3600, c


def test_wrong_password_unknown_and_disabled_user_get_one_message():
    cases = (("wrong password", "alice", "x" + S.passwords["alice"], r"wrong password"),
             ("unknown user", "nobody-here", S.passwords["alice"], r"unknown user"),
             ("disabled user", "carol", S.passwords["carol"], r"user is disabled"))
    ids = []
    for name, user, pw, why in cases:
        msg, rid = refused(main_srv, "IssueToken", None,
                           request={"username": user, "password": pw})
        assert msg == MSG_LOGIN, (name, msg)
        ids.append((name, rid, why))
    details = audit_details(main_srv)
    for name, rid, why in ids:
        d = " | ".join(details.get(rid, []))
        assert re.search(why, d), "%s: audit detail %r" % (name, d)
    msg, _ = refused(main_srv, "IssueToken", None, grpc.StatusCode.INVALID_ARGUMENT,
                     request={"username": "alice", "password": ""})
    assert "password" in msg, msg


def login_raw(srv, user, pw, source, barrier=None):
    req = msgs["bastion.v1.IssueTokenRequest"](username=user, password=pw).SerializeToString()
    status, message, _, _ = raw_grpc(srv.port, "/bastion.v1.Auth/IssueToken", req,
                                     source=source, barrier=barrier)
    return status, message


def parallel_logins(srv, pairs, source):
    """Sends every (user, password) login at once, each on its own connection (spread over
    the workers). Returns the (status, message) list."""
    out = [None] * len(pairs)
    barrier = threading.Barrier(len(pairs))

    def one(i, user, pw):
        out[i] = login_raw(srv, user, pw, source, barrier)
    threads = [threading.Thread(target=one, args=(i, u, p)) for i, (u, p) in enumerate(pairs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def strip_seconds(m):
    return re.sub(r"\d+", "N", m)


def test_repeated_failures_lock_the_user_out_and_not_the_others():
    # From 127.0.0.2 (another loopback address): three wrong passwords lock bob there.
    def login(user, pw, source):
        req = msgs["bastion.v1.IssueTokenRequest"](username=user, password=pw).SerializeToString()
        return raw_grpc(main_srv.port, "/bastion.v1.Auth/IssueToken", req, source=source)

    for _ in range(3):
        status, message, _, _ = login("bob", "wrong", "127.0.0.2")
        assert (status, message) == (16, MSG_LOGIN), (status, message)
    status, locked, _, _ = login("bob", S.passwords["bob"], "127.0.0.2")
    assert status == 8 and locked.startswith("too many failed logins"), (status, locked)
    # An unknown name locks the same way: the lock tells nothing about who exists.
    for _ in range(3):
        status, message, _, _ = login("mallory-%d" % os.getpid(), "wrong", "127.0.0.2")
        assert (status, message) == (16, MSG_LOGIN), (status, message)
    status, locked2, _, _ = login("mallory-%d" % os.getpid(), "wrong", "127.0.0.2")
    assert status == 8 and strip_seconds(locked2) == strip_seconds(locked), (locked2, locked)
    # Another user from the same address is not locked out.
    status, message, _, _ = login("alice", S.passwords["alice"], "127.0.0.2")
    assert status == 0, (status, message)
    # bob logged in from 127.0.0.1 at the start of this file: the lock an attacker earned
    # elsewhere does not keep him out there.
    resp, _ = call(main_srv, "IssueToken", {"username": "bob", "password": S.passwords["bob"]})
    SECRETS.append(resp.token)


def test_parallel_guesses_are_counted_before_scrypt_across_workers():
    """Ten wrong passwords for one name at once, on ten connections spread over both workers:
    attempts in flight count, so exactly max_failures_per_user (3) reach scrypt."""
    out = parallel_logins(main_srv, [("eve-%d" % os.getpid(), "guess-%d" % i)
                                     for i in range(10)], "127.0.0.3")
    statuses = sorted(st for st, _ in out)
    assert statuses == [8] * 7 + [16] * 3, out
    assert all(m == MSG_LOGIN for st, m in out if st == 16), out


def test_logins_cut_short_by_deadlines_or_cancellation_leave_the_server_sound():
    """IssueToken is the one authentication path that leaves the loop (scrypt on the pool). Calls
    whose deadline passes, or that the client cancels, while scrypt runs must end cleanly: no
    crash, no leak (ASan at exit), the next login works."""
    # A first login from this address exempts bob here from the per-user count of attempts in
    # flight, which would otherwise refuse all but 3 of the burst (by design: parallel guesses).
    def issue_token_records():
        return sum(1 for r in audit_records(main_srv)[0]
                   if r.get("event_type") == "AUDIT_EVENT_REQUEST" and
                   r.get("grpc_method") == "/bastion.v1.Auth/IssueToken")
    before = issue_token_records()
    resp, _ = call(main_srv, "IssueToken", {"username": "bob", "password": S.passwords["bob"]})
    SECRETS.append(resp.token)
    ch = channel(main_srv, "viewer")
    f = ch.unary_unary("/bastion.v1.Auth/IssueToken",
                       request_serializer=lambda m: m.SerializeToString(),
                       response_deserializer=msgs["bastion.v1.IssueTokenResponse"].FromString)
    req = msgs["bastion.v1.IssueTokenRequest"](username="bob", password=S.passwords["bob"])
    futures = [f.future(req, timeout=0.03 + 0.01 * (i % 4)) for i in range(12)]
    cancelled = [f.future(req, timeout=10) for _ in range(6)]
    time.sleep(0.05)   # sent, and scrypt (about 0.1 s each, two threads) still busy
    for c in cancelled:
        c.cancel()
    codes = []
    for fu in futures + cancelled:
        try:
            SECRETS.append(fu.result().token)
            codes.append("OK")
        except grpc.FutureCancelledError:
            codes.append("CANCELLED")
        except grpc.RpcError as e:
            codes.append(e.code().name)
    assert set(codes) <= {"OK", "DEADLINE_EXCEEDED", "CANCELLED"}, codes
    assert main_srv.alive()
    resp, _ = call(main_srv, "IssueToken", {"username": "bob", "password": S.passwords["bob"]})
    SECRETS.append(resp.token)
    # Exactly one audit record per call, cut short or not (written when scrypt is done).
    wait_for(lambda: issue_token_records() >= before + 20, "20 IssueToken records")
    time.sleep(0.2)
    assert issue_token_records() == before + 20, (issue_token_records(), before)
    print("  %s" % ", ".join("%s %d" % (c, codes.count(c)) for c in sorted(set(codes))))


def test_users_and_jti_denylist_reload_on_sighup():
    resp, _ = call(main_srv, "IssueToken", {"username": "alice",
                                            "password": S.passwords["alice"]})
    tok = resp.token
    SECRETS.append(tok)
    assert whoami(main_srv, bearer(tok)).name == "alice"     # now in the verified-token cache
    jti = forge.decode_unverified(tok)[1]["jti"]
    old_pw, new_pw = S.passwords["alice"], forge.b64url(os.urandom(15))
    SECRETS.append(new_pw)
    text = open(S.users).read()
    line = [ln for ln in text.splitlines() if "password_hash" in ln][0]   # alice comes first
    write_secret(S.users, text.replace(line, '    password_hash: "%s"' % scrypt_hash(new_pw)))
    with open(S.denylist, "a") as f:
        f.write(jti + "\n")
    n_ok = reloads(main_srv, "reload_ok", "auth.jti_denylist")
    os.kill(main_srv.proc.pid, signal.SIGHUP)
    wait_for(lambda: reloads(main_srv, "reload_ok", "auth.jti_denylist") > n_ok, "the reload")
    assert reloads(main_srv, "reload_ok", "auth.users") == n_ok + 1
    S.passwords["alice"] = new_pw
    msg, rid = refused(main_srv, "WhoAmI", bearer(tok))
    assert msg == MSG_TOKEN, msg
    assert "denylist" in " | ".join(audit_details(main_srv).get(rid, [])), rid
    msg, _ = refused(main_srv, "IssueToken", None, request={"username": "alice",
                                                            "password": old_pw})
    assert msg == MSG_LOGIN, msg
    resp, _ = call(main_srv, "IssueToken", {"username": "alice", "password": new_pw})
    SECRETS.append(resp.token)
    assert whoami(main_srv, bearer(resp.token)).name == "alice"


# ---- require_token, failure limits ------------------------------------------------------------


def strict_server():
    """require_token, client_auth optional (so require_client_certificate is what refuses a
    peer without one), at most 3 bad credentials and 4 failed logins per address."""
    extra = S.auth_section(require_token="true", failed_credentials_per_address="3",
                           login={"max_failures_per_address": 4})
    return harness.Server(extra=extra, policy=S.policy, client_auth="optional")


def test_require_token_refuses_certificate_only_but_not_issue_token_or_health():
    srv = strict_srv
    if True:
        msg, _ = refused(srv, "WhoAmI", None)
        assert msg == MSG_NEED_TOKEN, msg
        # require_client_certificate (the default) holds even when TLS lets a peer in without
        # one: a valid key alone is not enough.
        msg, _ = refused(srv, "WhoAmI", [("x-api-key", S.k_alice)], cert=None)
        assert msg == "a client certificate is required", msg
        msg, _ = refused(srv, "Ping", None)
        assert msg == MSG_NEED_TOKEN, msg
        health, _ = call(srv, "Check", {"service": "bastion.v1.Auth"})
        assert health.status == 1, health   # SERVING
        # bob: alice's password changes under the main server (the users file is shared, and
        # this server started before that reload).
        resp, _ = call(srv, "IssueToken", {"username": "bob", "password": S.passwords["bob"]})
        SECRETS.append(resp.token)
        assert whoami(srv, bearer(resp.token)).name == "bob"
        assert whoami(srv, [("x-api-key", S.k_alice)]).name == "alice"
        # Bad credentials from one address: after 3, RESOURCE_EXHAUSTED even for a good key.
        for _ in range(3):
            msg, _ = refused(srv, "WhoAmI", [("x-api-key", S.k_unknown)])
            assert msg == MSG_KEY, msg
        msg, _ = refused(srv, "WhoAmI", [("x-api-key", S.k_alice)],
                         grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert msg == "too many invalid credentials from this address; try again later", msg


def test_per_address_login_limit_holds_when_the_attacker_logs_in_between():
    """Password spraying: one guess each at many names (under the per-user limit) from one
    address, with a successful login to the attacker's own account between rounds. The
    per-address limit (4 failures) must stop the spray; a success must not wipe the address's
    failures, or whoever holds one account sprays without end."""
    outcomes = []
    for r in range(3):
        for i in range(3):
            outcomes.append(login_raw(strict_srv, "spray-%d-%d" % (r, i), "Winter2026!",
                                      "127.0.0.5"))
        outcomes.append(login_raw(strict_srv, "bob", S.passwords["bob"], "127.0.0.5"))
    guesses = [o for k, o in enumerate(outcomes) if k % 4 != 3]
    reached_scrypt = sum(1 for st, _ in guesses if st == 16)
    assert reached_scrypt <= 4, (
        "%d wrong passwords from one address reached scrypt, max_failures_per_address is 4 "
        "(the attacker's own successful logins reset the address's count): %r"
        % (reached_scrypt, outcomes))


def test_per_address_credential_limit_holds_when_a_valid_key_is_used_between():
    """The same for bad API keys and tokens (auth.failed_credentials_per_address: 3): two
    guesses, one call with the attacker's own valid key, and again."""
    outcomes = []
    for r in range(3):
        for i in range(2):
            outcomes.append(raw_grpc(strict_srv.port, "/bastion.v1.Auth/WhoAmI",
                                     headers=[("x-api-key", new_api_key())],
                                     source="127.0.0.6")[:2])
        outcomes.append(raw_grpc(strict_srv.port, "/bastion.v1.Auth/WhoAmI",
                                 headers=[("x-api-key", S.k_alice)], source="127.0.0.6")[:2])
    guesses = [o for k, o in enumerate(outcomes) if k % 3 != 2]
    checked = sum(1 for st, m in guesses if (st, m) == (16, MSG_KEY))
    assert checked <= 3, (
        "%d unknown API keys from one address were checked, failed_credentials_per_address is "
        "3 (a valid key in between resets the count): %r" % (checked, outcomes))


def close_channels_of(srv):
    for k in [k for k in _channels if k[0] == srv.port]:
        _channels.pop(k).close()


def test_without_required_certificate_a_key_alone_authenticates():
    """client_auth optional and require_client_certificate false: an API key is enough, nothing
    at all is anonymous (only Health takes that), and a login beyond the scrypt pool's queue
    is RESOURCE_EXHAUSTED at once."""
    extra = S.auth_section(require_client_certificate="false",
                           login={"scrypt_threads": 1, "scrypt_queue": 1,
                                  "max_failures_per_user": 100})
    with harness.Server(extra=extra, policy=S.policy, client_auth="optional") as srv:
        p = whoami(srv, [("x-api-key", S.k_alice)], cert=None)
        assert (p.name, p.mechanism, p.certificate_identity) == ("alice", 2, ""), p
        msg, _ = refused(srv, "WhoAmI", None, cert=None)
        assert msg.startswith("this method needs an authenticated caller"), msg
        health, _ = call(srv, "Check", {}, cert=None)
        assert health.status == 1, health
        out = parallel_logins(srv, [("nobody-%d" % i, "pw") for i in range(8)], "127.0.0.4")
        busy = [m for st, m in out if st == 8]
        assert busy and all(m == "too many logins in progress; try again shortly" for m in busy), \
            out
        assert all(m == MSG_LOGIN for st, m in out if st == 16), out
        assert sorted(set(st for st, _ in out)) == [8, 16], out
        print("  8 logins at once, pool of 1 + queue of 1: %d refused as busy" % len(busy))
        check_no_secrets(srv)
    close_channels_of(srv)


def test_sigterm_with_logins_in_flight_exits_cleanly():
    """SIGTERM while one login runs scrypt and others wait in the pool's queue: every caller gets
    an answer (its result, or UNAVAILABLE for a login the shutdown cancelled), and the server
    exits 0 (under ASan: no use after free, no leak)."""
    extra = S.auth_section(login={"scrypt_threads": 1, "scrypt_queue": 8,
                                  "max_failures_per_user": 100})
    srv = harness.Server(extra=extra, policy=S.policy)
    with srv:
        # grpcio, which keeps reading the streams a GOAWAY lets finish (python3-h2 4.1 stops).
        ch = harness.grpc_channel(srv.port, "viewer")
        f = ch.unary_unary("/bastion.v1.Auth/IssueToken",
                           request_serializer=lambda m: m.SerializeToString(),
                           response_deserializer=msgs["bastion.v1.IssueTokenResponse"].FromString)
        harness.unary(ch, msgs, "/bastion.v1.Mcp/Ping", msgs["bastion.v1.PingRequest"](),
                      "bastion.v1.PingResponse")   # connected before the burst
        futures = [f.future(msgs["bastion.v1.IssueTokenRequest"](
            username="bob", password=S.passwords["bob"] if i % 2 else "wrong"), timeout=20)
            for i in range(6)]
        time.sleep(0.05)   # the requests are in: one scrypt running, the rest queued
        srv.proc.send_signal(signal.SIGTERM)
        out = []
        for fu in futures:
            try:
                SECRETS.append(fu.result().token)
                out.append((0, ""))
            except grpc.RpcError as e:
                out.append((e.code().value[0], e.details()))
        ch.close()
        code = srv.proc.wait(20)
        assert code == 0, "bastiond exited %d:\n%s" % (code, srv.logs()[-3000:])
        assert all(o[0] in (0, 14, 16) for o in out), out
        assert any(o[0] != 14 for o in out), out   # the running login finished
        print("  answers: %s" % sorted(o[0] for o in out))


# ---- rotation under load ---------------------------------------------------------------------


def reloads(srv, event, component):
    """How many `event` lines (reload_ok, reload_refused) the log has for component."""
    n = 0
    for line in srv.logs().splitlines():
        if line.startswith("{") and '"%s"' % event in line:
            if json.loads(line).get("component") == component:
                n += 1
    return n


def wait_for(pred, what, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_api_keys_rotate_on_sighup_under_a_stream_of_calls():
    d = mkdtemp("bastion-rot-")
    a, b, c = new_api_key(), new_api_key(), new_api_key()
    keys_file = os.path.join(d, "api-keys.yaml")
    write_secret(keys_file, api_keys_yaml([
        {"id": "a", "key": a, "identity": "svc-a"}, {"id": "b", "key": b, "identity": "svc-b"}]))
    extra = ["auth:", "  api_keys: %s" % keys_file, "  failed_credentials_per_address: 0"]
    with harness.Server(extra=extra, policy=S.policy, workers=2) as srv:
        stop = threading.Event()
        counts = {"ok": 0, "fail": []}
        lock = threading.Lock()

        def stream(key, ident):
            with harness.grpc_channel(srv.port, "viewer") as ch:
                while not stop.is_set():
                    try:
                        resp = harness.unary(ch, msgs, "/bastion.v1.Auth/WhoAmI",
                                             msgs["bastion.v1.WhoAmIRequest"](),
                                             "bastion.v1.WhoAmIResponse", timeout=10,
                                             metadata=[("x-api-key", key)])
                        ok = resp.principal.name == ident
                        with lock:
                            if ok:
                                counts["ok"] += 1
                            else:
                                counts["fail"].append(resp.principal.name)
                    except grpc.RpcError as e:
                        with lock:
                            counts["fail"].append("%s: %s" % (e.code(), e.details()))

        threads = [threading.Thread(target=stream, args=(a, "svc-a")) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: counts["ok"] >= 50, "calls before the reload")
            # Rotation: b is replaced by c; a stays.
            write_secret(keys_file, api_keys_yaml([
                {"id": "a", "key": a, "identity": "svc-a"},
                {"id": "c", "key": c, "identity": "svc-c"}]))
            os.kill(srv.proc.pid, signal.SIGHUP)

            def c_works():
                try:
                    return whoami(srv, [("x-api-key", c)]).name == "svc-c"
                except grpc.RpcError:
                    return False
            wait_for(c_works, "the new key after SIGHUP")
            msg, _ = refused(srv, "WhoAmI", [("x-api-key", b)])
            assert msg == MSG_KEY, msg
            before = counts["ok"]
            # A broken file (and one anyone may read) is refused; the old set stays.
            for broken, mode in (("keys:\n  - id: a\n    sha256: [\n", 0o600),
                                 (api_keys_yaml([{"id": "b", "key": b, "identity": "x"}]),
                                  0o644)):
                write_secret(keys_file, broken, mode)
                n_refused = reloads(srv, "reload_refused", "auth.api_keys")
                os.kill(srv.proc.pid, signal.SIGHUP)
                wait_for(lambda: reloads(srv, "reload_refused", "auth.api_keys") > n_refused,
                         "the refusal of the broken file")
                assert whoami(srv, [("x-api-key", c)]).name == "svc-c"
                msg, _ = refused(srv, "WhoAmI", [("x-api-key", b)])
                assert msg == MSG_KEY, msg
            # The file gone altogether (a half-finished deployment): refused too.
            os.remove(keys_file)
            n_refused = reloads(srv, "reload_refused", "auth.api_keys")
            os.kill(srv.proc.pid, signal.SIGHUP)
            wait_for(lambda: reloads(srv, "reload_refused", "auth.api_keys") > n_refused,
                     "the refusal of the missing file")
            assert whoami(srv, [("x-api-key", c)]).name == "svc-c"
            wait_for(lambda: counts["ok"] >= before + 50, "calls after the reloads")
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert counts["fail"] == [], "failed calls during rotation: %r" % counts["fail"][:5]
        refusals = [line for line in srv.logs().splitlines() if '"reload_refused"' in line]
        assert len(refusals) == 3 and reloads(srv, "reload_refused", "auth.api_keys") == 3, \
            refusals
        print("  refusals logged:\n    " + "\n    ".join(r[:240] for r in refusals))
        print("  %d calls with key a through 4 reloads, 0 failures" % counts["ok"])
        check_no_secrets(srv)
    close_channels_of(srv)


# ---- the dev configuration -------------------------------------------------------------------


def auth_block_of_dev_config():
    """The `auth:` section of configs/bastion.yaml, verbatim."""
    lines = open(os.path.join(harness.SRC, "configs", "bastion.yaml")).read().splitlines()
    out, inside = [], False
    for line in lines:
        if line.startswith("auth:"):
            inside = True
        elif inside and line and not line.startswith((" ", "#")):
            break
        if inside:
            out.append(line)
    assert out, "configs/bastion.yaml has no auth: section"
    return out


def test_dev_config_auth_section_works_with_gen_dev_secrets():
    """scripts/gen-dev-secrets.sh output, read through configs/bastion.yaml's own `auth:`
    section (its relative paths resolved as in the repository: configs/ next to certs/dev/)."""
    root = mkdtemp("bastion-devcfg-")
    os.makedirs(os.path.join(root, "configs"))
    dev = os.path.join(root, "certs", "dev")
    subprocess.run([os.path.join(harness.SRC, "scripts", "gen-dev-secrets.sh"), dev], check=True,
                   stdout=subprocess.DEVNULL)
    creds = {}
    for line in open(os.path.join(dev, "dev-credentials.txt")):
        f = line.split()
        if len(f) == 3 and f[0] in ("api_key", "password"):
            creds[(f[0], f[1])] = f[2]
    SECRETS.extend(creds.values())
    with harness.Server(extra=auth_block_of_dev_config(),
                        config_dir=os.path.join(root, "configs")) as srv:
        p = whoami(srv, [("x-api-key", creds[("api_key", "operator")])], cert="admin")
        assert (p.name, p.mechanism, list(p.groups)) == ("operator", 2, ["operator"]), p
        resp, _ = call(srv, "IssueToken", {"username": "admin",
                                           "password": creds[("password", "admin")]})
        SECRETS.append(resp.token)
        p = whoami(srv, bearer(resp.token), cert="viewer")
        assert (p.name, p.mechanism) == ("admin", 3), p
        # The default policy binds certificates: with a key the caller acts as the key's
        # identity alone, and borrows nothing from the admin certificate it calls from.
        perm = {"permission": "k8s:secrets:manage", "namespace": "default"}
        assert call(srv, "CanI", perm, "admin")[0].allowed
        r = call(srv, "CanI", perm, "admin", [("x-api-key", creds[("api_key", "viewer")])])[0]
        assert (r.allowed, r.rule) == (False, "no rule matched"), r
        # The README's example: the `bastion` CLI with BASTION_API_KEY, then BASTION_TOKEN.
        c, k = harness.cert("admin")
        env = dict(os.environ, BASTION_CA=os.path.join(harness.certs(), "ca.crt"), BASTION_CERT=c,
                   BASTION_KEY=k, BASTION_SERVER="127.0.0.1:%d" % srv.port,
                   BASTION_API_KEY=creds[("api_key", "viewer")])
        cli = [os.path.join(harness.BUILD, "bin", "bastion"), "--server-name", "localhost", "-o",
               "json", "whoami"]
        r = subprocess.run(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        p = json.loads(r.stdout)["principal"]
        assert (p["name"], p["mechanism"], p["certificate_identity"]) == (
            "viewer", "AUTH_MECHANISM_API_KEY", SPIFFE + "admin"), p
        del env["BASTION_API_KEY"]
        env["BASTION_TOKEN"] = resp.token
        r = subprocess.run(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["principal"]["mechanism"] == "AUTH_MECHANISM_JWT", r.stdout
        env["BASTION_TOKEN"] = resp.token[:-4] + "AAAA"
        r = subprocess.run(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        assert r.returncode == 3 and b"UNAUTHENTICATED: invalid or expired token" in r.stderr, r
        check_no_secrets(srv)
    close_channels_of(srv)


# ---- secrets never leak; the early token has expired -----------------------------------------


def leaks(text, secrets=None):
    """The lines of text that hold a secret (or a token's signature), with the secret masked."""
    found = []
    for s in SECRETS if secrets is None else secrets:
        for part in {s, s.rsplit(".", 1)[-1]} if s.count(".") == 2 else {s}:
            if len(part) < 16:
                continue
            for line in text.splitlines():
                if part in line:
                    found.append(line.replace(part, part[:8] + "<SECRET>")[:400])
    return found


def check_no_secrets(srv):
    _, audit_text = audit_records(srv)
    found = leaks(srv.logs())
    assert not found, "secrets in the server log:\n" + "\n".join(found[:5])
    found = leaks(audit_text)
    assert not found, "secrets in the audit log:\n" + "\n".join(found[:5])
    found = leaks("\n".join(SEEN_MESSAGES))
    assert not found, "secrets echoed to callers:\n" + "\n".join(found[:5])


def test_no_secret_in_messages_log_or_audit():
    """Every secret of the file (keys, passwords, HS secrets, the signing key, every token and
    its signature) against every message a caller saw, and the logs and audit logs of the two
    long-lived servers (the others are checked before they stop)."""
    check_no_secrets(main_srv)
    check_no_secrets(strict_srv)


def test_issued_token_is_refused_after_its_expiry():
    wait = early["exp"] - time.time() + 1.2
    if wait > 0:
        print("  waiting %.1f s for the token issued at the start to expire" % wait, flush=True)
        time.sleep(wait)
    msg, rid = refused(main_srv, "WhoAmI", bearer(early["token"]))
    assert msg == MSG_TOKEN, msg
    d = " | ".join(audit_details(main_srv).get(rid, []))
    assert "token expired" in d, d


def main():
    global msgs, S, main_srv, strict_srv
    msgs = harness.Messages()
    S = Secrets()
    main_srv = harness.Server(extra=S.auth_section(), policy=S.policy)
    strict_srv = strict_server()
    with main_srv, strict_srv:
        code = run([
            test_issue_token_early_for_the_expiry_check,
            test_valid_jwt_for_every_algorithm_from_python_jwt,
            test_token_identity_wins_and_the_certificate_identity_is_kept,
            test_authorization_sees_the_token_identity_not_the_certificate,
            test_api_key_permissions_reach_only_as_far_as_the_policy_says,
            test_token_permissions_only_from_a_trusted_issuer,
            test_forged_tokens_are_valid_when_nothing_is_wrong,
            test_every_attack_is_unauthenticated_with_its_generic_message,
            test_token_size_limit_is_8_kib_exactly,
            test_issue_token_then_whoami_as_that_user,
            test_wrong_password_unknown_and_disabled_user_get_one_message,
            test_repeated_failures_lock_the_user_out_and_not_the_others,
            test_parallel_guesses_are_counted_before_scrypt_across_workers,
            test_logins_cut_short_by_deadlines_or_cancellation_leave_the_server_sound,
            test_users_and_jti_denylist_reload_on_sighup,
            test_require_token_refuses_certificate_only_but_not_issue_token_or_health,
            test_per_address_login_limit_holds_when_the_attacker_logs_in_between,
            test_per_address_credential_limit_holds_when_a_valid_key_is_used_between,
            test_without_required_certificate_a_key_alone_authenticates,
            test_sigterm_with_logins_in_flight_exits_cleanly,
            test_api_keys_rotate_on_sighup_under_a_stream_of_calls,
            test_dev_config_auth_section_works_with_gen_dev_secrets,
            test_api_key_in_a_query_string_is_unimplemented_and_never_echoed,
            test_issued_token_is_refused_after_its_expiry,
            test_no_secret_in_messages_log_or_audit,
        ])
        close_channels()
    for d in TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)
    print("total %.1f s" % (time.monotonic() - T0))
    sys.exit(code)


def run(tests):
    """harness.run_tests without the exit, so the server stops cleanly first."""
    failed = 0
    for t in tests:
        start = time.monotonic()
        try:
            t()
            print("PASS %s (%.2fs)" % (t.__name__, time.monotonic() - start), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            failed += 1
            import traceback
            print("FAIL %s: %s" % (t.__name__, e), flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    main()
