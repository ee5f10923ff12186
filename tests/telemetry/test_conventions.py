"""Span names and attributes: the tier on every backend, OpenTelemetry's database conventions
for round trips, the GenAI agent conventions for turns; the same through the process's
providers and through an App's own SDK."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest

from ifriend import App
from ifriend.telemetry import conversation_id_attribute, user_id_attribute

from ..backends import Suite
from .test_instrumentation import every_session_operation
from .test_setup import lines_of

APP = "conventions"
# The tiers that may answer each operation, per backend (a plain backend answers itself).
TIERS = {
    "memory": {"*": {"memory"}},
    "redis": {"*": {"redis"}},
    "mysql": {"*": {"mysql"}},
    "tiered": {"get_session": {"lru", "redis", "mysql"}, "*": {"mysql"}},
}
# Round trips of a tiered turn (name, what for): `{db}` is the MySQL database.
ROUND_TRIPS = {
    ("PIPELINE probe", "probe"),  # the probe script and the state hashes, one round trip
    ("EVALSHA append", "mirror_append"),
    ("EVALSHA hydrate", "hydrate"),
    ("SET {redis}", "grant_lease"),
    ("BATCH SELECT {db}", "load"),
    ("BATCH {db}", "create"),
    ("BATCH {db}", "append"),
}


def backends(run: str = "") -> Suite:
    """The session backends of `TIERS` under prefixes of the run `run`."""
    return Suite("session", redis_prefix=f"ifriend-conv-{run}", table_prefix=f"ifconv_{run}_", only=TIERS)


@pytest.fixture
async def cleanup():
    """`cleanup()`: the backends of a new run, whose Redis keys and MySQL tables are removed
    after the test."""
    runs: list[Suite] = []
    yield lambda: runs.append(suite := backends(uuid.uuid4().hex[:10])) or suite
    for suite in runs:
        await suite.drop_server_data()


@pytest.mark.parametrize("backend", backends().params())
async def test_every_backend_says_which_tier_answered(backend, cleanup, spans, metric_points):
    async with App(cleanup().require(backend).build()) as app:
        await every_session_operation(app, APP)
    operations = [s for s in spans.get_finished_spans() if s.name.startswith("ifriend.session.")]
    assert len(operations) == 7
    for span in operations:
        op = span.name.removeprefix("ifriend.session.")
        allowed = TIERS[backend].get(op, TIERS[backend]["*"])
        assert span.attributes["ifriend.tier"] in allowed, (span.name, dict(span.attributes))
    points = metric_points.points("ifriend.operation.duration", ifriend__backend=backend)
    assert sum(count for _, count in points) == 7
    assert all(labels["ifriend.tier"] for labels, _ in points)


def check_round_trip(span: dict, redis_url: str, mysql_url: str) -> tuple[str, str]:
    """The database conventions of one round trip; its name in `ROUND_TRIPS` form."""
    a = span["attributes"]
    system = a["db.system.name"]
    operation = a["db.operation.name"]
    assert span["kind"] == "CLIENT" and a["ifriend.tier"] == ("redis" if system == "redis" else "mysql")
    url = urlsplit(redis_url if system == "redis" else mysql_url)
    assert (a["server.address"], a["server.port"]) == (url.hostname, url.port)
    assert a["db.namespace"] == (url.path.lstrip("/") or "0")
    batch = operation.split()[0] in ("PIPELINE", "MULTI", "BATCH")
    assert ("db.operation.batch.size" in a) is batch and a.get("db.operation.batch.size", 2) >= 2
    if system == "redis":
        target = a.get("db.stored_procedure.name") or f"{url.hostname}:{url.port}"  # never the index
    else:
        assert system in ("mysql", "mariadb")
        target = a.get("db.collection.name") or a["db.namespace"]
    assert span["name"] == f"{operation} {target}"
    name = span["name"].replace(f"{url.hostname}:{url.port}", "{redis}").replace(a["db.namespace"], "{db}")
    return name, a["ifriend.call"]


def as_lines(finished) -> list[dict]:
    """Spans of the in-memory exporter as the jsonl lines read them."""
    return [
        {
            "name": s.name,
            "kind": s.kind.name,
            "span_id": f"{s.context.span_id:016x}",
            "parent_id": f"{s.parent.span_id:016x}" if s.parent else None,
            "scope": s.instrumentation_scope.name,
            "attributes": dict(s.attributes),
        }
        for s in finished
    ]


@pytest.mark.parametrize("through", ["process providers", "own SDK"])
async def test_span_names_and_attributes_follow_the_conventions(
    through, cleanup, spans, tmp_path, redis_url, mysql_url
):
    file = tmp_path / "t.jsonl"
    exporter = {"exporter": "jsonl", "file": str(file)} if through == "own SDK" else {}
    async with App(cleanup().require("tiered").build(telemetry=exporter)) as app:
        async for _ in app.conversations.turn(user_id="U1", session_id="thread-1", text="hi"):
            pass
        app.session_service.store.cache.clear()  # a read from MySQL, hydrating Redis
        await app.session_service.get_session(app_name=app.settings.app.name, user_id="U1", session_id="thread-1")
        await app.memory_service.search_memory(app_name=app.settings.app.name, user_id="U1", query="hi")
        agent = app.agent.name
    found = lines_of(file) if through == "own SDK" else as_lines(spans.get_finished_spans())
    ours = [s for s in found if s["scope"] == "ifriend"]
    assert all("db.system" not in s["attributes"] for s in found)  # the deprecated name is gone
    round_trips = {check_round_trip(s, redis_url, mysql_url) for s in ours if "db.system.name" in s["attributes"]}
    assert ROUND_TRIPS <= round_trips, round_trips - ROUND_TRIPS
    [turn] = [s for s in ours if s["name"] == "ifriend.turn"]
    assert turn["attributes"] == turn["attributes"] | {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": agent,
        "gen_ai.conversation.id": conversation_id_attribute("thread-1"),
        "user.id": user_id_attribute("U1"),
        "ifriend.channel": "direct",
    }
    assert conversation_id_attribute("thread-1") not in ("thread-1", user_id_attribute("thread-1"))
    [search] = [s for s in ours if s["name"] == "ifriend.memory.search_memory"]
    assert search["attributes"]["gen_ai.operation.name"] == "search_memory"
    if through == "process providers":  # ADK's spans are there too: they nest in the turn
        by_id = {s["span_id"]: s for s in found}
        [invoke] = [s for s in found if s["name"] == f"invoke_agent {agent}"]
        parents = []
        span = invoke
        while span["parent_id"] in by_id:
            span = by_id[span["parent_id"]]
            parents.append(span["name"])
        assert parents[-1] == "ifriend.turn"
        appends = [s for s in ours if s["name"] == "ifriend.session.append_event"]
        assert any(by_id[s["parent_id"]]["scope"] == "gcp.vertex.agent" for s in appends)
