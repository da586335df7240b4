"""``python -m tests.chaos.atheris_adapters PROVIDER [libFuzzer flags] [CORPUS_DIR]``: coverage-guided fuzzing of
one adapter with atheris (libFuzzer), seeded with its recorded cases.

Each input is a body; the headers, family and route come from one of the provider's recorded cases (picked by
the input's length). The adapter is instrumented, so libFuzzer keeps the mutations that reach new branches of
``parse`` → ``dedupe_key`` → ``mapping_keys`` → ``to_canonical_commands``; what the hypothesis strategies in
``test_bad_input.py`` do not think of, this finds by coverage. Anything but commands or a classified
``IngestError`` — and anything slower than ``-timeout`` — is a crash: libFuzzer prints it, writes the input as
``crash-*``/``timeout-*`` and exits non-zero (``test_atheris.py`` runs it bounded by ``-runs``).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["ingest"]):
    # every ingest module is imported here for the first time, so each one is instrumented
    from ingest.adapters.registry import adapter_class, registered_providers
    from tests.chaos.test_bad_input import SEEDS, run_adapter

    for _provider in registered_providers():
        adapter_class(_provider)


def main() -> None:
    provider = sys.argv[1]
    seeds = SEEDS.get(provider) or []
    corpus = Path(tempfile.mkdtemp(prefix=f"atheris-{provider}-"))
    for n, case in enumerate(seeds):
        (corpus / f"seed-{n}").write_bytes(case.body)

    def one(data: bytes) -> None:
        case = seeds[len(data) % len(seeds)] if seeds else None
        run_adapter(provider, data, dict(case.headers) if case else {}, case.family if case else "stock",
                    case.meta.get("route", "") if case else "")

    args = [sys.argv[0], *sys.argv[2:]]
    if not any(not a.startswith("-") for a in sys.argv[2:]):
        args.append(str(corpus))  # libFuzzer reads the seeds from, and adds what it finds to, this folder
    atheris.Setup(args, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
