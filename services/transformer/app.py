"""Composition root of the transformer (tests reuse ``build``)."""
from __future__ import annotations

from functools import partial

from ingest import topics
from ingest.kafka.stage import StageSpec, serve_stage, stage_with_resources
from ingest.rawlog.s3 import S3Store
from services.transformer.handler import handle
from services.transformer.settings import TransformerSettings


async def build(settings: TransformerSettings) -> StageSpec:
    store = S3Store(settings)
    return stage_with_resources("transformer", topics.MAPPED, "Mapped", partial(handle, bodies=store), store=store)


async def main() -> None:
    settings = TransformerSettings()
    await serve_stage(await build(settings), settings)
