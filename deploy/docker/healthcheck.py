"""Container health probe: exit 0 when http://127.0.0.1:PORT/PATH answers 2xx, else 1.

Usage: python /app/healthcheck.py PORT [PATH]      (PATH defaults to /readyz)
The slim image has no curl; compose health checks call this instead.
"""

import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: healthcheck.py PORT [PATH]", file=sys.stderr)
        return 2
    port, path = argv[1], (argv[2] if len(argv) > 2 else "/readyz")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
            return 0 if 200 <= resp.status < 300 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
