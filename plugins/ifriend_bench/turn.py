"""`ifriend bench turn`: one Slack turn end to end, per session backend.

For each backend (memory, redis, mysql, tiered on the local servers) a full App runs the
real slack-bolt app in HTTP mode on 127.0.0.1 with its Web API pointed at a local fake Slack
(`ifriend_slack.testing.FakeSlack`). A turn is timed from just before a signed Events API
request is sent to the moment the fake Slack receives the call that shows the complete
answer (`chat.stopStream` of a natively streamed one; `chat.postMessage` or the last
`chat.update` on the post-and-update path); the first call showing text is timed too.
Threads grow to `turns` turns (a mention, then plain thread replies), backends interleaved
turn by turn. A fifth target, `tiered+compaction`, is the tiered backend with ADK's events
compaction on (`[app.compaction]`), so the Runner's rebuild cost shows with and without it.

The session calls of a turn (get/create/append on the session service) are counted and timed;
right after each tiered turn, as many floor appends as the turn made appends are timed
(`floors`: a durable INSERT + COMMIT on the same MariaDB, then an RPUSH on the same Redis),
the `floor` row that the `p50 / floor` column divides by.

The model is ifriend's local `ifriend-echo`; the time spent inside its `generate_content_async`
is measured on every call, and the framework's own overhead is total minus model time (it
includes the HTTP hops, bolt, dedupe, the session reads and durable appends, ADK's Runner
and the Slack Web API calls, all on one event loop with the fake Slack and the client).
The collector is tuned once the Apps are up, as `ifriend run` tunes a bot's (`tune_gc`).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from ifriend.plugin_api import App, PluginError, Settings, tune_gc

from .cleanup import delete_redis_keys, drop_tables
from .floors import Floors, MySQLFloor, RedisFloor
from .timing import Report

BACKENDS = ("memory", "redis", "mysql", "tiered")
TARGET_BACKEND = "tiered"
COMPACTED = "tiered+compaction"  # the tiered backend with [app.compaction] on
FLOOR = "floor"
FLOOR_FIGURE = "session calls"  # the table divides "session calls [last]" by this floor's p50
TARGET_OVERHEAD_P50_MS = 10.0
TARGET_SESSION_CALLS_P50_MS = 5.0
SESSION_CALLS = ("get_session", "create_session", "append_event")
SECRET = "bench-signing-secret"
TEXT_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream", "chat.postMessage", "chat.update")
FIGURES = (
    "total [all]",
    "overhead [all]",
    "first post [all]",
    "total [last]",
    "overhead [last]",
    "model [last]",
    "session calls [last]",
    "session get [last]",
    "session appends [last]",
    "adk runner rest [last]",
    "slack before turn [last]",
)


@dataclass(frozen=True)
class BenchConfig:
    redis_url: str
    mysql_url: str
    turns: int = 100
    threads: int = 3
    backends: tuple[str, ...] = BACKENDS
    last: int = 10  # "at `turns` turns": the last this-many turns of each thread
    compaction_interval: int = 10  # [app.compaction] interval of the tiered+compaction target

    @classmethod
    def quick(cls, redis_url: str, mysql_url: str) -> BenchConfig:
        """A small run that exercises every figure (for tests, not for figures)."""
        return cls(redis_url, mysql_url, turns=6, threads=1, last=3, compaction_interval=2)

    def targets(self) -> list[tuple[str, str]]:
        """(target name, session backend) of every target; tiered brings tiered+compaction."""
        found = [(backend, backend) for backend in self.backends]
        if TARGET_BACKEND in self.backends:
            found.append((COMPACTED, TARGET_BACKEND))
        return found


class ModelClock:
    """Time spent inside the local model's `generate_content_async`, summed over calls."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    @contextmanager
    def installed(self) -> Iterator[ModelClock]:
        from ifriend.plugin_api import EchoModel

        original = EchoModel.generate_content_async
        clock = self

        async def timed(self: Any, llm_request: Any, stream: bool = False) -> AsyncGenerator[Any, None]:
            generator = original(self, llm_request, stream)
            clock.calls += 1
            while True:
                started = time.perf_counter()
                try:
                    item = await generator.__anext__()
                except StopAsyncIteration:
                    clock.seconds += time.perf_counter() - started
                    return
                clock.seconds += time.perf_counter() - started
                yield item

        EchoModel.generate_content_async = timed  # type: ignore[method-assign]
        try:
            yield self
        finally:
            EchoModel.generate_content_async = original  # type: ignore[method-assign]

    def reset(self) -> None:
        self.seconds = 0.0
        self.calls = 0


@dataclass
class Target:
    """One backend: its App, its Slack channel, a client posting to it, its threads."""

    name: str
    app: App
    channel: Any
    events: Any
    roots: list[str] = field(default_factory=list)
    turn_started: float = 0.0
    turn_seconds: float = 0.0
    # the current turn's session calls: how many of each, and the seconds spent in each kind
    calls: Counter[str] = field(default_factory=Counter)
    call_seconds: Counter[str] = field(default_factory=Counter)
    compactions: int = 0  # compaction events appended (by ADK's events compaction)
    calls_per_turn: Counter[str] = field(default_factory=Counter)  # "get 1, append 2" -> turns

    @property
    def session_seconds(self) -> float:
        return sum(self.call_seconds.values())

    def start_turn(self) -> None:
        self.turn_seconds = 0.0
        self.calls.clear()
        self.call_seconds.clear()

    def instrument(self) -> None:
        """Time the turn (`Conversations.turn`) and the session service calls inside it."""
        conversations = self.app.conversations
        original_turn = conversations.turn
        target = self

        async def turn(**kwargs: Any) -> AsyncGenerator[Any, None]:
            # Only the time inside the turn's own steps: not the channel's work between them.
            # Up to the final reply (what follows it overlaps the channel's last Web API call).
            target.turn_started = time.perf_counter()
            replies = original_turn(**kwargs)
            final = False
            try:
                while True:
                    started = time.perf_counter()
                    try:
                        reply = await replies.__anext__()
                    except StopAsyncIteration:
                        return
                    if not final:
                        target.turn_seconds += time.perf_counter() - started
                    final = final or reply.final
                    yield reply
            finally:
                await replies.aclose()

        conversations.turn = turn
        service = self.app.session_service
        for name in SESSION_CALLS:
            original = getattr(service, name)

            async def timed(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
                event = kwargs.get("event", args[1] if len(args) > 1 else None)
                if event is not None and event.actions.compaction is not None:
                    target.compactions += 1
                target.calls[_name] += 1
                started = time.perf_counter()
                try:
                    return await _original(*args, **kwargs)
                finally:
                    target.call_seconds[_name] += time.perf_counter() - started

            setattr(service, name, timed)


def settings_for(name: str, backend: str, config: BenchConfig, fake_url: str, run_id: str) -> Settings:
    app: dict[str, Any] = {"name": "bench-turn"}
    if name == COMPACTED:
        app = {
            "name": "bench-turn-compaction",
            "compaction": {"enabled": True, "interval": config.compaction_interval, "overlap": 1},
        }
    backends: dict[str, Any] = {}
    if backend in ("redis", "tiered"):
        backends["redis"] = {"url": config.redis_url, "key_prefix": f"ifriend-bench-{run_id}"}
    if backend in ("mysql", "tiered"):
        backends["mysql"] = {"url": config.mysql_url, "table_prefix": f"ifbench_{run_id}_"}
    return Settings.model_validate(
        {
            "app": app,
            "session": {"backend": backend},
            "backends": backends,
            "channels": {
                "slack": {
                    "mode": "http",
                    "bot_token": "xoxb-bench",
                    "signing_secret": SECRET,
                    "host": "127.0.0.1",
                    "port": 0,
                    "api_url": fake_url,
                }
            },
        }
    )


async def run(config: BenchConfig, *, progress: Callable[[str], None] = lambda _: None) -> Report:
    """Measure every backend; the report (the servers' data is removed afterwards)."""
    try:
        from ifriend_slack.testing import EventPoster, FakeSlack, mention, message
    except ImportError as exc:
        raise PluginError(f"bench turn needs the slack channel: pip install 'ifriend[slack]' ({exc})") from exc

    run_id = uuid.uuid4().hex[:8]
    report = Report("turn")
    clock = ModelClock()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(drop_tables, config.mysql_url, f"ifbench_{run_id}_")
        stack.push_async_callback(delete_redis_keys, config.redis_url, f"ifriend-bench-{run_id}")
        fake = await stack.enter_async_context(FakeSlack())
        stack.enter_context(clock.installed())
        floors = Floors(
            MySQLFloor(config.mysql_url, f"ifbench_{run_id}_floor"),
            RedisFloor(config.redis_url, f"ifriend-bench-{run_id}:floor"),
        )
        await floors.open()
        stack.push_async_callback(floors.close)
        targets = []
        for name, backend in config.targets():
            settings = settings_for(name, backend, config, fake.api_url, run_id)
            app = await stack.enter_async_context(App(settings))
            channel = app.build_channel("slack")
            stack.push_async_callback(channel.close)
            await channel.start()
            events = await stack.enter_async_context(EventPoster(channel.url, SECRET))
            target = Target(name, app, channel, events)
            target.instrument()
            targets.append(target)

        async def one_turn(target: Target, thread: int, k: int) -> None:
            user = f"U{thread:04d}"
            if k == 0:
                event = mention(f"turn {k} of thread {thread}", user=user)
                target.roots.append(event["ts"])
            else:
                event = message(f"turn {k} of thread {thread}", user=user, thread_ts=target.roots[thread])
            clock.reset()
            target.start_turn()
            first_call = len(fake.calls)
            started = time.perf_counter()
            status = await target.events.send(event)
            await target.channel.drain(30)
            if status != 200:
                raise RuntimeError(f"{target.name}: the event got HTTP {status}")
            shown = [c for c in fake.calls[first_call:] if c.method in TEXT_METHODS and c.status == 200]
            if not shown:
                raise RuntimeError(f"{target.name}: turn {k} of thread {thread} was not answered")
            total = shown[-1].at - started
            first = shown[0].at - started
            overhead = total - clock.seconds
            tags = ["all"] + (["last"] if k >= config.turns - config.last else [])
            for tag in tags:
                report.series(f"total [{tag}]", target.name).seconds.append(total)
                report.series(f"overhead [{tag}]", target.name).seconds.append(overhead)
            report.series("first post [all]", target.name).seconds.append(first)
            if "last" in tags:
                turn = target.turn_seconds
                report.series("model [last]", target.name).seconds.append(clock.seconds)
                report.series("session calls [last]", target.name).seconds.append(target.session_seconds)
                report.series("session get [last]", target.name).seconds.append(
                    target.call_seconds["get_session"]
                )
                report.series("session appends [last]", target.name).seconds.append(
                    target.call_seconds["append_event"]
                )
                target.calls_per_turn[describe_calls(target.calls)] += 1
                if target.name == TARGET_BACKEND:  # the paired floor, right after the turn
                    appends = target.calls["append_event"]
                    report.series(FLOOR_FIGURE, FLOOR).seconds.append(await floor_seconds(floors, appends))
                report.series("adk runner rest [last]", target.name).seconds.append(
                    turn - clock.seconds - target.session_seconds
                )
                report.series("slack before turn [last]", target.name).seconds.append(
                    target.turn_started - started
                )

        for target in targets:  # rows of the table grouped by backend
            for figure in FIGURES:
                report.series(figure, target.name)
            if target.name == TARGET_BACKEND:
                report.series(FLOOR_FIGURE, FLOOR)
        # Warm up every target once (imports, first connections, auth.test), not measured.
        for target in targets:
            await target.events.send(mention("warm up"))
            await target.channel.drain(30)
        tune_gc()  # as `ifriend run` does once the App is up
        for thread in range(config.threads):
            progress(f"measuring thread {thread + 1} of {config.threads} ({config.turns} turns)")
            for k in range(config.turns):
                order = targets[k % len(targets):] + targets[: k % len(targets)]
                for target in order:
                    await one_turn(target, thread, k)
    evaluate(report, config, targets)
    return report


async def floor_seconds(floors: Floors, appends: int) -> float:
    """The time of `appends` floor appends: each a durable INSERT + COMMIT, then an RPUSH."""
    started = time.perf_counter()
    for _ in range(appends):
        await floors.mysql.commit()
        await floors.redis.rpush()
    return time.perf_counter() - started


def describe_calls(calls: Counter[str]) -> str:
    """`get 1 + append 2`: the session calls of one turn."""
    return " + ".join(f"{name.split('_')[0]} {calls[name]}" for name in SESSION_CALLS if calls[name]) or "none"


def evaluate(report: Report, config: BenchConfig, targets: list[Target]) -> None:
    last = f"turns {config.turns - config.last + 1}-{config.turns}"
    found = report.samples.get(("overhead [last]", TARGET_BACKEND))
    if found is not None:
        report.check(f"{TARGET_BACKEND} overhead p50 ms at {last}", found.p50 * 1e3, TARGET_OVERHEAD_P50_MS)
    calls = report.samples.get(("session calls [last]", TARGET_BACKEND))
    floor = report.samples.get((FLOOR_FIGURE, FLOOR))
    if calls is not None:
        report.check(
            f"{TARGET_BACKEND} session calls p50 ms at {last}", calls.p50 * 1e3, TARGET_SESSION_CALLS_P50_MS
        )
    if calls is not None and floor is not None:
        report.notes.append(
            f"{TARGET_BACKEND} session calls / paired floor at {last}: p50 {calls.p50 / floor.p50:.2f}x, "
            f"p99 {calls.p99 / floor.p99:.2f}x (the floor row: per append of the turn one durable "
            "INSERT+COMMIT on the same MariaDB and one RPUSH on the same Redis, timed right after "
            f"each tiered turn of {last})"
        )
    for target in targets:
        made = ", ".join(f"{shape} ({n} turns)" for shape, n in target.calls_per_turn.most_common())
        report.notes.append(f"session calls per turn at {last}, {target.name}: {made}")
    compacted = [t for t in targets if t.name == COMPACTED]
    if compacted:
        report.notes.append(
            f"{COMPACTED}: [app.compaction] interval {config.compaction_interval}, overlap 1; "
            f"{compacted[0].compactions} compaction events appended over {config.threads} thread(s) "
            "(the summarizer is ifriend-echo, whose summaries quote everything they summarize)"
        )
    report.notes.append(
        "total: signed event sent -> complete answer received by the fake Slack; "
        "overhead = total - time inside the model's generate_content_async; "
        f"[last] = turns {config.turns - config.last + 1}-{config.turns} of each thread; "
        "session calls = get/create/append on the session service during the turn; "
        "adk runner rest = time inside Conversations.turn up to its final reply, minus model and "
        "session calls; slack before turn = event sent -> turn started (HTTP in, bolt, dedupe, "
        "thread check). The answer is shown while the turn's last append commits, so the parts "
        "can add up to more than the total"
    )
