"""The forecast's calibration on this machine: each part's measured seconds against its forecast, kept in the
cache folder (`calibration.json`) after every run, and the ratio the next forecast scales that part by.

The forecast's efficiencies are constants fitted on three CPUs (forecast.py); a fourth, or a busy one, can sit
1.4x off, and a budgeted run should land close to its budget. The last measurement of a part wins: the machine
as it is now. A part forecast at under MIN_SECONDS is recorded but never scales a forecast: there the fixed costs
the forecast does not model (loading an index, scoring) outweigh the work it does. A ratio is held within
RANGE, and a file that cannot be read is ignored: a calibration may only nudge a forecast, never break a run.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

FILE = "calibration.json"
MIN_SECONDS = 30.0
RANGE = (1 / 3, 3.0)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _seconds(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else None


def ratios(cache_dir: Path, machine: str) -> dict[str, float]:
    """Part -> measured / forecast seconds on `machine`, for the parts measured there with enough to go on."""
    out = {}
    parts = _read(Path(cache_dir) / FILE).get(machine)
    for part, m in (parts.items() if isinstance(parts, dict) else ()):
        forecast, measured = (_seconds(m.get(k)) if isinstance(m, dict) else None for k in ("forecast_s", "measured_s"))
        if forecast and measured and forecast >= MIN_SECONDS:
            out[part] = min(max(measured / forecast, RANGE[0]), RANGE[1])
    return out


def record(cache_dir: Path, machine: str, measured: dict[str, tuple[float, float]]) -> None:
    """Keeps each part's (forecast, measured) seconds for `machine`, over what an earlier run recorded; the file is
    replaced whole, so a reader never sees half of it."""
    if not measured:
        return
    path = Path(cache_dir) / FILE
    data = _read(path)
    mine = data.get(machine) if isinstance(data.get(machine), dict) else {}
    mine.update({part: {"forecast_s": round(f, 2), "measured_s": round(m, 2)} for part, (f, m) in measured.items()})
    data[machine] = mine
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def measured(results: list, pair_generation: dict, forecast_s: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Part -> (forecast, measured) seconds, for the parts this run did all the work of: an arm that read an
    adapter or an answer from the cache, or a pair generation that read questions from the cache, measured less
    than the forecast counts (and a demonstration pool made again from every candidate, more)."""
    out = {}
    for r in results:
        costs = [r.cost, r.timings.get("rebuild_cost") or {}]
        whole = not r.timings.get("answers_reused") and not any(c.get("adapter_cached") for c in costs)
        if whole and r.name in forecast_s and _seconds(r.timings.get("wall_s")):
            out[r.name] = (forecast_s[r.name], r.timings["wall_s"])
    parts = (pair_generation or {}).get("parts") or {}
    whole = not any(p.get("cached") or p.get("reused") or (p.get("pool") or {}).get("too_few") for p in parts.values())
    if parts and "pair writing" in forecast_s and whole:
        out["pair writing"] = (forecast_s["pair writing"], sum(p.get("seconds") or 0.0 for p in parts.values()))
    return {k: v for k, v in out.items() if _seconds(v[0]) and _seconds(v[1])}
