"""Ids with separators and Unicode: never colliding, round-tripping, distinct where a
collation would equate them.

One behaviour per test, for every backend of the contract suite (`backends.SUITE`); the
reference is `google.adk.sessions.InMemorySessionService` (see `helpers.py` for where
ifriend differs).
"""

from __future__ import annotations

import unicodedata

import pytest

from .helpers import event, get


SEPARATORS = [":", "/", "|", "#", ",", ".", "-", "_", "{", "}", "\\", "%", "*", " "]


@pytest.mark.parametrize("sep", SEPARATORS)
async def test_user_and_session_ids_with_separators_never_collide(session_service, app_name, sep):
    pairs = [
        (f"a{sep}b", "c"),
        ("a", f"b{sep}c"),
        ("a", f"b{sep}{sep}c"),
        (f"a{sep}", "b"),
        ("a", f"{sep}b"),
        (f"a{sep}b{sep}c", "d"),
    ]
    pairs = [(u, s) for u, s in pairs if u.strip() == u and s.strip() == s]
    for n, (user, sid) in enumerate(pairs):
        s = await session_service.create_session(
            app_name=app_name, user_id=user, session_id=sid, state={"n": n, f"user:s{n}": n}
        )
        await session_service.append_event(s, event(text=f"{n}"))

    def of(user):
        return [(n, sid) for n, (u, sid) in enumerate(pairs) if u == user]

    for n, (user, sid) in enumerate(pairs):
        user_state = {f"s{m}": m for m, _ in of(user)}
        got = await get(session_service, app_name, sid, user)
        assert got.state == {"n": n, **{f"user:{k}": v for k, v in user_state.items()}}
        assert [e.content.parts[0].text for e in got.events] == [f"{n}"]
        assert await session_service.get_user_state(app_name=app_name, user_id=user) == user_state
        listed = await session_service.list_sessions(app_name=app_name, user_id=user)
        assert sorted(x.id for x in listed.sessions) == sorted(sid for _, sid in of(user))

    user, sid = pairs[0]
    await session_service.delete_session(app_name=app_name, user_id=user, session_id=sid)
    assert await get(session_service, app_name, sid, user) is None
    for user, sid in pairs[1:]:
        assert (await get(session_service, app_name, sid, user)) is not None


@pytest.mark.parametrize("sep", [":", "/", "|", "{", "}", " "])
async def test_app_names_with_separators_never_collide(session_service, unique, sep):
    base = unique()
    combos = [(unique.track(f"{base}{sep}x"), "y"), (base, f"x{sep}y")]
    for n, (app, user) in enumerate(combos):
        await session_service.create_session(
            app_name=app, user_id=user, session_id="s", state={"app:n": n, "user:n": n, "n": n}
        )

    for n, (app, user) in enumerate(combos):
        got = await get(session_service, app, "s", user)
        assert got.state == {"app:n": n, "user:n": n, "n": n}
        assert await session_service.get_user_state(app_name=app, user_id=user) == {"n": n}
        listed = await session_service.list_sessions(app_name=app)
        assert [(x.user_id, x.id) for x in listed.sessions] == [(user, "s")]


UNICODE_IDS = ["é", "日本語", "🙂", "Ωμέγα", "עברית", "x\u200by", "ß", "İ", "e\u0301"]


@pytest.mark.parametrize("text", UNICODE_IDS)
async def test_unicode_ids_round_trip(session_service, unique, text):
    app = unique(text)
    s = await session_service.create_session(
        app_name=app, user_id=text, session_id=text, state={"user:k": text}
    )
    await session_service.append_event(s, event(text=text))

    got = await get(session_service, app, text, text)
    assert (got.app_name, got.user_id, got.id) == (app, text, text)
    assert got.events[0].content.parts[0].text == text
    assert await session_service.get_user_state(app_name=app, user_id=text) == {"k": text}
    listed = await session_service.list_sessions(app_name=app, user_id=text)
    assert [(x.user_id, x.id) for x in listed.sessions] == [(text, text)]


async def test_ids_that_a_collation_would_equate_stay_distinct(session_service, app_name):
    nfc = unicodedata.normalize("NFC", "é")
    nfd = unicodedata.normalize("NFD", "é")
    variants = ["a", "A", "á", nfc, nfd, "ss", "ß", "ａ", "a\u200b"]
    assert len(set(variants)) == len(variants)
    for n, v in enumerate(variants):
        await session_service.create_session(
            app_name=app_name, user_id=v, session_id=v, state={"n": n, "user:n": n}
        )

    for n, v in enumerate(variants):
        assert (await get(session_service, app_name, v, v)).state == {"n": n, "user:n": n}
        assert await session_service.get_user_state(app_name=app_name, user_id=v) == {"n": n}
    listed = await session_service.list_sessions(app_name=app_name)
    assert sorted((x.user_id, x.id) for x in listed.sessions) == sorted((v, v) for v in variants)
