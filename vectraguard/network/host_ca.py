"""The host's CA bundle, for `network.trust_host_ca`.

Found the way the host's OpenSSL finds it (`ssl.get_default_verify_paths()`):
$SSL_CERT_FILE if set, else the distribution's cafile (Debian:
/etc/ssl/certs/ca-certificates.crt); failing that, a bundle file in the
capath ($SSL_CERT_DIR or the distribution's). Not found or unreadable is an
error (fail closed): a run that asked for the host's trust must not start
without it, nor with the image's own store silently instead.

The bundle is bind-mounted read-only at HOST_CA_TARGET (through the run's
mount plan, so the deny rules and the held-descriptor checks apply) and the
variables in CA_VARIABLES point at it: OpenSSL, Python requests, curl,
Node.js (in addition to its built-in roots), pip and git.
"""

from __future__ import annotations

import os

from vectraguard.errors import PolicyError

HOST_CA_TARGET = "/etc/vectraguard/host-ca.pem"
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "PIP_CERT",
                "GIT_SSL_CAINFO")
# Bundle names distributions put in their capath (Debian/Ubuntu, Fedora/RHEL via
# /etc/pki/tls/certs, Alpine, SUSE): used only when no cafile exists.
_CAPATH_BUNDLES = ("ca-certificates.crt", "ca-bundle.crt", "tls-ca-bundle.pem", "ca-bundle.pem")
_PEM_MARK = b"-----BEGIN CERTIFICATE-----"
_HINT = ("set SSL_CERT_FILE to a PEM bundle of the CAs to trust (readable by everyone), install the "
         "distribution's ca-certificates package, or run without --trust-host-ca / network.trust_host_ca")


def find_bundle(environ: dict[str, str] | None = None) -> str:
    """The host path of the CA bundle to mount (as found, not resolved:
    the mount plan resolves and checks it). PolicyError if none is usable."""
    import ssl  # only for a run that wants the bundle: ~4 ms (libssl) of every other run's start

    env = os.environ if environ is None else environ
    paths = ssl.get_default_verify_paths()
    explicit = env.get(paths.openssl_cafile_env)
    if explicit:
        # The user named it: that file or nothing, never a fallback.
        _check_bundle(explicit, f"${paths.openssl_cafile_env}")
        return explicit
    if paths.openssl_cafile and os.path.exists(paths.openssl_cafile):
        _check_bundle(paths.openssl_cafile, "the host's OpenSSL CA file")
        return paths.openssl_cafile
    capath = env.get(paths.openssl_capath_env) or paths.openssl_capath
    for name in _CAPATH_BUNDLES:
        candidate = os.path.join(capath, name)
        if os.path.isfile(candidate):
            _check_bundle(candidate, "the host's CA bundle")
            return candidate
    raise PolicyError(f"vectraguard: trust_host_ca: no CA bundle found on this host (looked at "
                      f"{paths.openssl_cafile} and {capath})", hint=_HINT)


def _check_bundle(path: str, what: str) -> None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
    except OSError as exc:
        raise PolicyError(f"vectraguard: trust_host_ca: cannot read {what} {path}: {exc.strerror}",
                          hint=_HINT) from None
    if _PEM_MARK not in head:
        raise PolicyError(f"vectraguard: trust_host_ca: {what} {path} holds no PEM certificate", hint=_HINT)


def wanted(network_mode: str, trust_host_ca: bool) -> bool:
    """Whether a run mounts the bundle: only where the sandbox has a network."""
    return trust_host_ca and network_mode in ("allowlist", "full")
