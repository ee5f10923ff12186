"""`ifriend bench memory`: memory backends against ADK's InMemoryMemoryService, side by side.

One user holds `entries` memories among `users` users; then, for every target, the time
of one add (`add_events_to_memory` of one event, what `auto_add = "every_turn"` does)
and of four kinds of search: two keywords (what the `load_memory` tool sends), a user's
message of seven common words and two rarer ones (what `preload_memory` sends), nine of
the most frequent words only (the worst case), and a non-ASCII word. Every target exists twice, side by side:
as above, and with the other users holding `growth` times more entries (`, others x10`):
the same user's searches must not be slower there. Targets are interleaved round by
round; every key and table the run made is removed afterwards.
"""

from __future__ import annotations

import gc
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.genai import types

from ifriend.plugin_api import App, Settings

from .cleanup import delete_redis_keys, drop_tables
from .timing import Report, timed

APP = "bench-memory"
BASELINE = "adk-memory"
TARGETS = ("memory", "redis", "mysql")
COMMON = (
    "i you the a to and is it of in my that for me do what this have be on with can "
    "was not are we so but your just how about like know at get want if would there "
    "they all some one when will out up from time think go make should"
).split()
NON_ASCII = ["café", "thé", "crème", "привет", "спасибо", "東京", "ラーメン", "naïve", "über", "ça"]
SEARCH_KINDS = ("keywords", "sentence", "common words", "non-ascii")


@dataclass(frozen=True)
class BenchConfig:
    redis_url: str
    mysql_url: str
    users: int = 100
    entries: int = 10_000
    others: int = 100
    growth: int = 10
    samples: int = 200
    baseline_samples: int = 40  # ADK's search reads every entry: 0.2-1 s each at 10,000
    rounds: int = 10
    vocabulary: int = 5000
    seed: int = 7

    @classmethod
    def quick(cls, redis_url: str, mysql_url: str) -> BenchConfig:
        """A small run that exercises every figure (for tests, not for figures)."""
        return cls(
            redis_url, mysql_url, users=4, entries=300, others=20, growth=2,
            samples=10, baseline_samples=4, rounds=2,
        )


class Corpus:
    """Chat-like messages: Zipf-distributed words, common words first, some non-ASCII."""

    def __init__(self, config: BenchConfig) -> None:
        self.random = random.Random(config.seed)
        syllables = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"]
        content: set[str] = set()
        while len(content) < config.vocabulary:
            content.add("".join(self.random.choices(syllables, k=self.random.randint(2, 4))))
        self.words = COMMON + sorted(content)
        self.weights = [1 / (rank + 1) ** 1.05 for rank in range(len(self.words))]
        self.clock = 1_700_000_000.0

    def text(self) -> str:
        words = self.random.choices(self.words, self.weights, k=self.random.randint(6, 24))
        if self.random.random() < 0.1:
            words.insert(self.random.randrange(len(words)), self.random.choice(NON_ASCII))
        return " ".join(words).capitalize() + self.random.choice([".", "?", "!"])

    def event(self) -> Event:
        self.clock += 1.0
        author = self.random.choice(["user", "assistant"])
        return Event(
            author=author,
            invocation_id="bench",
            content=types.Content(role="user" if author == "user" else "model", parts=[types.Part(text=self.text())]),
            timestamp=self.clock,
        )

    def query(self, kind: str) -> str:
        content = self.words[len(COMMON) : len(COMMON) + 600]  # words of middling frequency
        if kind == "keywords":  # what the load_memory tool sends
            return " ".join(self.random.sample(content, 2))
        if kind == "sentence":  # a user's message (what preload_memory sends)
            words = self.random.sample(COMMON[:40], 7) + self.random.sample(content, 2)
            self.random.shuffle(words)
            return " ".join(words)
        if kind == "common words":  # the worst case: nine of the most frequent words
            return " ".join(self.random.choices(self.words[:100], self.weights[:100], k=9))
        return self.random.choice(NON_ASCII)


async def open_targets(
    config: BenchConfig, stack: AsyncExitStack, run_id: str, suffix: str
) -> dict[str, BaseMemoryService]:
    """Every target, named `NAME + suffix`, under prefixes of its own."""
    run_id += "g" if suffix else "s"
    redis = {"url": config.redis_url, "key_prefix": f"ifriend-bench-{run_id}"}
    mysql = {"url": config.mysql_url, "table_prefix": f"ifbench_{run_id}_"}
    stack.push_async_callback(delete_redis_keys, config.redis_url, redis["key_prefix"])
    stack.push_async_callback(drop_tables, config.mysql_url, mysql["table_prefix"])
    targets: dict[str, BaseMemoryService] = {}
    for name in TARGETS:
        settings = Settings.model_validate(
            {"memory": {"backend": name}, "backends": {"redis": redis, "mysql": mysql}}
        )
        app = await stack.enter_async_context(App(settings))
        targets[name + suffix] = app.memory_service
    targets[BASELINE + suffix] = InMemoryMemoryService()
    return targets


async def fill(targets: dict[str, BaseMemoryService], user: str, events: list[Event], batch: int = 200) -> None:
    for i in range(0, len(events), batch):
        chunk = events[i : i + batch]
        for service in targets.values():
            await service.add_events_to_memory(
                app_name=APP, user_id=user, events=chunk, session_id=f"fill-{i // 2000}"
            )


async def interleave(
    report: Report, figure: str, runners: dict[str, Callable[[int], Awaitable[None]]], config: BenchConfig
) -> None:
    """Samples of every target, a share per round, the order rotating (as `bench sessions`);
    the ADK baselines take `baseline_samples`."""
    names = list(runners)
    for r in range(config.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples = config.baseline_samples if name.startswith(BASELINE) else config.samples
            series = report.series(figure, name)
            for _ in range(max(1, samples // config.rounds)):
                i = len(series.seconds)
                series.seconds.append(await timed(lambda: runners[name](i)))


async def bench_searches(
    report: Report, targets: dict[str, BaseMemoryService], corpus: Corpus, config: BenchConfig
) -> None:
    for kind in SEARCH_KINDS:
        queries = [corpus.query(kind) for _ in range(config.samples)]
        runners: dict[str, Callable[[int], Awaitable[None]]] = {
            name: lambda i, s=service: _search(s, queries[i % len(queries)])
            for name, service in targets.items()
        }
        await interleave(report, f"search {kind}", runners, config)


async def _search(service: BaseMemoryService, query: str) -> None:
    await service.search_memory(app_name=APP, user_id="user-0", query=query)


async def bench_adds(
    report: Report, targets: dict[str, BaseMemoryService], corpus: Corpus, config: BenchConfig
) -> None:
    events = [corpus.event() for _ in range(config.samples)]  # the same in every target

    def add(service: BaseMemoryService) -> Callable[[int], Awaitable[None]]:
        async def run(i: int) -> None:
            await service.add_events_to_memory(
                app_name=APP, user_id="user-0", events=[events[i % len(events)]], session_id="turns"
            )

        return run

    await interleave(report, "add 1 event", {n: add(s) for n, s in targets.items()}, config)


def evaluate(report: Report, config: BenchConfig, grown: str) -> None:
    for name in ("redis", "mysql"):
        for kind in SEARCH_KINDS:
            figure = f"search {kind}"
            report.check(
                f"{name} {figure} p50 at {config.entries} entries (ms)",
                report.p50(figure, name) * 1e3,
                5.0,
            )
        worst = max(
            report.p50(f"search {kind}", name + grown) / report.p50(f"search {kind}", name)
            for kind in SEARCH_KINDS
        )
        report.check(f"{name} search p50{grown} / as is (worst kind)", worst, 1.25)


async def run(config: BenchConfig, *, progress: Callable[[str], None] = lambda _: None) -> Report:
    """Fill both sets of targets, then measure them side by side; servers' data removed after.

    After filling, the objects made so far are frozen out of the cyclic GC's reach
    (`gc.freeze`): ADK's baselines hold every event as objects, and full collections
    over them would otherwise land in every target's p99.
    """
    run_id = uuid.uuid4().hex[:8]
    grown = f", others x{config.growth}"
    report = Report("memory")
    corpus = Corpus(config)
    async with AsyncExitStack() as stack:
        stack.callback(gc.unfreeze)
        small = await open_targets(config, stack, run_id, "")
        big = await open_targets(config, stack, run_id, grown)
        started = time.perf_counter()
        progress(f"adding {config.entries} entries for one user, {config.others} (or {config.others * config.growth}) for each of {config.users - 1} others")
        await fill({**small, **big}, "user-0", [corpus.event() for _ in range(config.entries)])
        for u in range(1, config.users):
            events = [corpus.event() for _ in range(config.others * config.growth)]
            await fill(small, f"user-{u}", events[: config.others])
            await fill(big, f"user-{u}", events)
        report.notes.append(
            f"user-0 holds {config.entries} entries (+{config.samples} from the add figure); "
            f"the {config.users - 1} other users {config.others} each "
            f"({config.others * config.growth} each in the targets{grown}); "
            f"filled in {time.perf_counter() - started:.0f} s"
        )
        gc.collect()
        gc.freeze()
        targets = {**small, **big}
        progress("searching")
        await bench_searches(report, targets, corpus, config)
        progress("adding")
        await bench_adds(report, targets, corpus, config)
    evaluate(report, config, grown)
    return report
