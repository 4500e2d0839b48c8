"""An in-process stand-in for an LLM provider: realistic token counts and latency, no network."""
from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass

MODELS = {
    # model: (time to first token s, seconds per output token, typical output tokens)
    "demo-large": (0.35, 0.012, 420),
    "demo-small": (0.12, 0.004, 220),
}


class ProviderError(RuntimeError):
    """What a provider's 429/5xx looks like to the app."""


@dataclass
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    model: str
    finish_reason: str


def count_tokens(text: str) -> int:
    # ~4 characters per token for English text, like common BPE tokenizers.
    return max(1, math.ceil(len(text) / 4))


class FakeLLM:
    # error_rate: the share of calls that fail like a provider's 429/529 overload (-> 502 on /api/chat). 1%
    # keeps the demo's 5xx ratio steady and well below the APIHighErrorRate medium rung (demo/README.md).
    def __init__(self, speed: float = 1.0, error_rate: float = 0.01, seed: int | None = None):
        self.speed = speed  # <1 makes calls faster (tests), 1 is realistic
        self.error_rate = error_rate
        self.rng = random.Random(seed)

    async def complete(self, model: str, system: str, messages: list[str], max_tokens: int = 1024) -> Completion:
        if model not in MODELS:
            raise ValueError(f"unknown model {model}")
        ttft, per_token, typical = MODELS[model]
        input_tokens = count_tokens(system) + sum(count_tokens(m) + 4 for m in messages)
        out = int(min(max_tokens, max(8, self.rng.lognormvariate(math.log(typical), 0.6))))
        finish = "length" if out >= max_tokens else "stop"
        await asyncio.sleep(ttft * self.speed * self.rng.uniform(0.6, 1.6))
        if self.rng.random() < self.error_rate:
            raise ProviderError("provider overloaded (529)")
        await asyncio.sleep(out * per_token * self.speed)
        return Completion(text="lorem " * min(out, 64), input_tokens=input_tokens, output_tokens=out, model=model,
                          finish_reason=finish)
