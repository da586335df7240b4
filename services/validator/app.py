"""Composition root of the validator (tests reuse ``build``)."""
from __future__ import annotations

from ingest import topics
from ingest.kafka.stage import StageSpec, serve_stage, stage_with_resources
from services.validator.handler import handle
from services.validator.settings import ValidatorSettings


async def build(settings: ValidatorSettings) -> StageSpec:
    return stage_with_resources("validator", topics.TRANSFORMED, "Transformed", handle)


async def main() -> None:
    settings = ValidatorSettings()
    await serve_stage(await build(settings), settings)
