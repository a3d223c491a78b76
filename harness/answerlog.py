"""An append-only log of generated answers inside an unfinished run folder, so `--resume` skips done work.

Keys are (model state, exact prompt, token budget): the same key always holds the same greedy answer.
Whole batches are skipped only when every prompt in them is logged, so batch composition, and with it every
answer, is the same as in an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from .generate import Generation


class AnswerLog:
    def __init__(self, path: Path | None = None):
        self.path = path
        self.done: dict[str, Generation] = {}
        if path is not None and path.is_file():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut off by the kill: everything before it is whole
                self.done[row["key"]] = Generation(**row["gen"])

    @staticmethod
    def key(model_tag: str, prompt: str, max_new_tokens: int) -> str:
        return hashlib.sha256(f"{model_tag}\0{max_new_tokens}\0{prompt}".encode()).hexdigest()

    def get(self, key: str) -> Generation | None:
        return self.done.get(key)

    def put(self, items: list[tuple[str, Generation]]) -> None:
        new = [(k, g) for k, g in items if k not in self.done]
        self.done.update(new)
        if self.path is not None and new:
            with open(self.path, "a") as f:
                f.writelines(json.dumps({"key": k, "gen": asdict(g)}) + "\n" for k, g in new)
                f.flush()
                os.fsync(f.fileno())
