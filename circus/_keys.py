"""CurveZMQ keys: the layout `circusd --gen-keys DIR` writes, and loading them back.

    DIR/server.key           the daemon's public key (give it to every client)
    DIR/server.key_secret    the daemon's key pair (keep it on the daemon's host)
    DIR/client.key_secret    a client's key pair (keep it with the client)
    DIR/authorized/client.key  public keys of the clients the daemon lets in

A daemon on tcp:// lets in only the clients whose public key is in its `authorized_keys`
directory; a client must know the daemon's public key. pyzmq's zmq.auth does the work.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import CircusError


class KeyFileError(CircusError, ValueError):
    """A key file is missing or is not a CurveZMQ certificate."""


@dataclass(frozen=True)
class ServerKeys:
    """What a daemon needs for CURVE: its key pair and where the allowed clients' keys are."""

    public: bytes
    secret: bytes
    authorized: str  # a directory of client public keys (*.key)


@dataclass(frozen=True)
class ClientKeys:
    """What a client needs: its key pair and the daemon's public key."""

    public: bytes
    secret: bytes
    server_public: bytes


def _load(path: str | os.PathLike[str], want_secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise KeyFileError(f"key file {path!r} does not exist")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as exc:
        raise KeyFileError(f"key file {path!r} is not a CurveZMQ certificate: {exc}") from None
    if want_secret and not secret:
        raise KeyFileError(f"key file {path!r} has no secret key (use the *.key_secret file)")
    return public, secret


def gen_keys(directory: str | os.PathLike[str]) -> dict[str, str]:
    """Write a server and a client key pair into `directory` (made 0700); return the paths."""
    import zmq.auth

    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    server_pub, server_sec = zmq.auth.create_certificates(str(base), "server")
    client_pub, client_sec = zmq.auth.create_certificates(str(base), "client")
    authorized = base / "authorized"
    authorized.mkdir(exist_ok=True)
    shutil.copy(client_pub, authorized / "client.key")
    for secret in (server_sec, client_sec):
        os.chmod(secret, 0o600)
    return {
        "server_public_key": server_pub, "server_secret_key": server_sec,
        "client_public_key": client_pub, "client_secret_key": client_sec,
        "authorized_keys": str(authorized),
    }  # fmt: skip


def server_keys(
    secret_key: str | os.PathLike[str], authorized: str | os.PathLike[str]
) -> ServerKeys:
    public, secret = _load(secret_key, want_secret=True)
    authorized = os.fspath(authorized)
    if not os.path.isdir(authorized):
        raise KeyFileError(f"authorized_keys {authorized!r} is not a directory of client keys")
    assert secret is not None
    return ServerKeys(public, secret, authorized)


def client_keys(
    secret_key: str | os.PathLike[str], server_public_key: str | os.PathLike[str]
) -> ClientKeys:
    public, secret = _load(secret_key, want_secret=True)
    server_public, _ = _load(server_public_key, want_secret=False)
    assert secret is not None
    return ClientKeys(public, secret, server_public)


def keys_in(directory: str | os.PathLike[str]) -> tuple[ServerKeys | None, ClientKeys | None]:
    """Whatever of the --gen-keys layout is in `directory` (None for a missing half)."""
    base = Path(directory)
    server = client = None
    if (base / "server.key_secret").is_file() and (base / "authorized").is_dir():
        server = server_keys(base / "server.key_secret", base / "authorized")
    if (base / "client.key_secret").is_file() and (base / "server.key").is_file():
        client = client_keys(base / "client.key_secret", base / "server.key")
    return server, client


__all__ = ["ClientKeys", "KeyFileError", "ServerKeys", "client_keys", "gen_keys", "keys_in",
           "server_keys"]
