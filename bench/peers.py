"""Install the peer managers (Circus 0.19, Supervisor 4.3) into their own venvs.

Each peer gets ``bench/.peers/<name>/`` made with ``python3 -m venv`` and filled with pip.
Running this again is cheap: a venv whose pinned version already imports is left alone.

Circus 0.19.0 (2025) runs on Python 3.11 with current tornado and pyzmq, so nothing older
is pinned; the pins below only freeze the versions this benchmark was checked with.

    python bench/peers.py            # install what is missing
    python bench/peers.py --check    # only report, exit 1 if something is missing
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent / ".peers"


@dataclass(frozen=True)
class Peer:
    name: str
    requirements: tuple[str, ...]
    module: str
    version: str
    program: str

    @property
    def venv(self) -> Path:
        return PEERS_DIR / self.name

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def executable(self) -> Path:
        return self.venv / "bin" / self.program


PEERS = {
    "circus": Peer(
        name="circus",
        requirements=("circus==0.19.0", "pyzmq>=25,<28", "tornado>=6.3,<7", "psutil>=5.9"),
        module="circus",
        version="0.19.0",
        program="circusd",
    ),
    "supervisor": Peer(
        name="supervisor",
        requirements=("supervisor==4.3.0",),
        module="supervisor",
        version="4.3.0",
        program="supervisord",
    ),
}

_VERSION_CODE = {
    "circus": "import circus; print(circus.__version__)",
    "supervisor": "from importlib.metadata import version; print(version('supervisor'))",
}


def installed_version(peer: Peer) -> str | None:
    if not peer.python.exists() or not peer.executable.exists():
        return None
    done = subprocess.run(
        [str(peer.python), "-I", "-c", _VERSION_CODE[peer.name]],  # -I: not our ./circus
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def is_installed(peer: Peer) -> bool:
    return installed_version(peer) == peer.version


def install(peer: Peer) -> None:
    """Create the peer's venv and pip-install it, unless it is already there."""
    if is_installed(peer):
        return
    if peer.venv.exists():
        shutil.rmtree(peer.venv)
    peer.venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["python3", "-m", "venv", str(peer.venv)], check=True, timeout=300)
    pip = [str(peer.python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, *peer.requirements], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"pip failed for {peer.name}:\n{done.stdout}{done.stderr}")
    found = installed_version(peer)
    if found != peer.version:
        raise RuntimeError(f"{peer.name}: expected {peer.version}, venv has {found}")


def ensure(names: list[str]) -> dict[str, Peer]:
    """Install the named peers if needed and return them."""
    peers = {}
    for name in names:
        peer = PEERS[name]
        if not is_installed(peer):
            print(f"installing {peer.name} {peer.version} into {peer.venv} ...", flush=True)
            install(peer)
        peers[name] = peer
    return peers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report only, install nothing")
    parser.add_argument("names", nargs="*", help=f"peers to install (default: {', '.join(PEERS)})")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(PEERS)
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(sorted(unknown))}")
    args.names = args.names or list(PEERS)
    missing = 0
    for name in args.names:
        peer = PEERS[name]
        if not args.check:
            ensure([name])
        version = installed_version(peer)
        missing += version != peer.version
        print(f"{peer.name:<11} {version or 'missing':<8} {peer.executable}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
