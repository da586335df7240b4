"""A payload's trail through the pipeline, per attempt (the original and each replay); pure."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STAGES = (("dedupe", "deduped"), ("mapper", "mapped"), ("transformer", "transformed"),
          ("validator", "validated"), ("command-writer", "commands written"))


def parse_missing(text: str | None) -> list[tuple[str, str]]:
    """``item:SKU-1,store:S-1`` → [("item", "SKU-1"), ("store", "S-1")]."""
    out = []
    for part in (text or "").split(","):
        entity, sep, external = part.strip().partition(":")
        if sep and entity and external:
            out.append((entity, external))
    return out


def attempt_trail(failures: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One step per stage: ok, failed (with reason), skipped, not reached or pending."""
    order = {name: n for n, (name, _) in enumerate(STAGES)}
    failed = sorted((f for f in failures if f["stage"] in order), key=lambda f: order[f["stage"]])
    ended = sorted((o for o in outcomes if o["stage"] in order), key=lambda o: order[o["stage"]])
    stop_at, stop = len(STAGES), None
    if failed:
        stop_at, stop = order[failed[0]["stage"]], ("failed", failed[0])
    if ended and order[ended[0]["stage"]] <= stop_at:
        o = ended[0]
        stop_at, stop = order[o["stage"]], ("processed" if o["outcome"] == "processed" else "skipped", o)
    steps = []
    for n, (stage, label) in enumerate(STAGES):
        step: dict[str, Any] = {"stage": stage, "label": label}
        if stop is None:
            step["state"] = "pending"
        elif n < stop_at:
            step["state"] = "ok"
        elif n == stop_at:
            kind, rec = stop
            step["state"] = "ok" if kind == "processed" else kind
            if kind == "failed":
                step.update({"class": rec["class"], "reasonCode": rec["reason_code"], "message": rec["message"],
                             "failureId": str(rec["failure_id"])})
            else:
                step.update({"reason": rec.get("reason") or "", "commands": [
                    {"commandId": c, "commandType": t, "topic": tp}
                    for c, t, tp in zip(rec.get("command_ids") or [], rec.get("command_types") or [],
                                        _pad(rec.get("topics") or [], len(rec.get("command_ids") or [])))]})
        else:
            step["state"] = "not reached"
        steps.append(step)
    return steps


def _pad(topics: list[str], n: int) -> list[str]:
    # outcomes list the topics written; when one topic per command is not given, show them all on each
    return topics if len(topics) == n else [", ".join(topics)] * n


def trail(failures: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]],
          replays: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Attempts, original first then each replay in order: ``{"replayId", "at", "actor", "steps"}``."""
    attempts: list[dict[str, Any]] = [{"replayId": None, "at": None, "actor": None, "jobId": None}]
    attempts += [{"replayId": r["replayId"], "at": r["at"], "actor": r.get("actor"), "jobId": r.get("jobId")}
                 for r in replays]
    for a in attempts:
        key = a["replayId"] or ""
        a["steps"] = attempt_trail([f for f in failures if (f.get("replay_id") or "") == key],
                                   [o for o in outcomes if (o.get("replay_key") or "") == key])
    return attempts
