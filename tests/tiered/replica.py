"""A replica in its own process for the two-process test: JSON commands in, JSON answers out.

    python replica.py '<settings as JSON>'
    {"op": "append", "session": "s1", "text": "hi"}  ->  {"ok": true}
    {"op": "get", "session": "s1"}                    ->  {"ok": true, "texts": [...]}
("app", "user" and "cold": true, which drops the LRU first, are optional.)
"""

from __future__ import annotations

import asyncio
import json
import sys

from google.adk.events.event import Event
from google.genai import types

from ifriend import App, Settings

APP, USER = "replicas", "u1"


async def serve(settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    async with App(settings) as app:
        service = app.session_service
        print(json.dumps({"ok": True, "ready": True}), flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = json.loads(line)
            sid = command.get("session", "s1")
            app_name, user_id = command.get("app", APP), command.get("user", USER)
            try:
                if command.get("cold"):
                    service.store.cache.clear()
                session = await service.get_session(app_name=app_name, user_id=user_id, session_id=sid)
                if command["op"] == "append":
                    if session is None:
                        session = await service.create_session(
                            app_name=app_name, user_id=user_id, session_id=sid
                        )
                    text = command["text"]
                    await service.append_event(
                        session,
                        Event(author="user", content=types.Content(role="user", parts=[types.Part(text=text)])),
                    )
                    answer = {"ok": True}
                else:
                    events = session.events if session else []
                    answer = {"ok": True, "texts": [e.content.parts[0].text for e in events]}
            except Exception as exc:  # reported to the test, which fails on it
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(serve(Settings.model_validate(json.loads(sys.argv[1]))))
