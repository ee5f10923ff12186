"""Open a page in headless Chromium over the DevTools protocol; collect console errors.

Debian's `chromium` (`make test` installs it). The browser gets its own profile folder,
no network beyond 127.0.0.1 DevTools, and is killed at the end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]
_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageResult:
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    values: dict[str, Any] = field(default_factory=dict)  # the expressions evaluated
    screenshots: dict[str, bytes] = field(default_factory=dict)  # PNG of each element asked for


async def open_page(
    url: str,
    expressions: dict[str, str],
    *,
    profile: Path,
    screenshots: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> PageResult:
    """Load `url`, wait for its load event, evaluate `expressions` (name -> JS), and take a
    screenshot (PNG) of the first element matching each of `screenshots` (name -> CSS selector)."""
    binary = chromium_binary()
    assert binary, "chromium is not installed (make test installs it)"
    process = await asyncio.create_subprocess_exec(
        binary,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(timeout):
            browser_ws = await _devtools_url(process)
            return await _drive(browser_ws, url, expressions, screenshots or {})
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


async def _devtools_url(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    seen = b""
    while True:
        line = await process.stderr.readline()
        if not line:
            raise AssertionError(f"chromium exited before DevTools listened: {seen[-2000:]!r}")
        seen += line
        found = _LISTENING.search(line)
        if found:
            return found.group(1).decode()


async def _drive(
    browser_ws: str, url: str, expressions: dict[str, str], screenshots: dict[str, str]
) -> PageResult:
    result = PageResult()
    ids = itertools.count(1)
    host = browser_ws.split("/devtools/")[0].replace("ws://", "http://")
    async with aiohttp.ClientSession() as http:
        async with http.put(f"{host}/json/new?about:blank") as response:
            target = await response.json(content_type=None)
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
            loaded = asyncio.Event()

            async def reader() -> None:
                async for message in ws:
                    data = json.loads(message.data)
                    if "id" in data and data["id"] in pending:
                        pending.pop(data["id"]).set_result(data)
                        continue
                    method, params = data.get("method"), data.get("params", {})
                    if method == "Page.loadEventFired":
                        loaded.set()
                    elif method == "Runtime.exceptionThrown":
                        details = params.get("exceptionDetails", {})
                        text = details.get("exception", {}).get("description") or details.get("text")
                        result.errors.append(f"uncaught: {text}")
                    elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                        args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                        result.errors.append(f"console.{params['type']}: {args}")
                    elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                        entry = params["entry"]
                        result.errors.append(f"log: {entry.get('text')} ({entry.get('url', '')})")

            async def call(method: str, **params: Any) -> dict[str, Any]:
                i = next(ids)
                pending[i] = asyncio.get_running_loop().create_future()
                await ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
                return await pending[i]

            task = asyncio.create_task(reader())
            try:
                for domain in ("Page", "Runtime", "Log"):
                    await call(f"{domain}.enable")
                await call("Page.navigate", url=url)
                await loaded.wait()
                await asyncio.sleep(0.2)  # let scripts run and late errors arrive
                for name, expression in expressions.items():
                    reply = await call("Runtime.evaluate", expression=expression, returnByValue=True)
                    result.values[name] = reply.get("result", {}).get("result", {}).get("value")
                for name, selector in screenshots.items():
                    where = (
                        f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                        ".getBoundingClientRect(); return [r.x + scrollX, r.y + scrollY, r.width, r.height]; })()"
                    )
                    reply = await call("Runtime.evaluate", expression=where, returnByValue=True)
                    x, y, width, height = reply["result"]["result"]["value"]
                    shot = await call(
                        "Page.captureScreenshot",
                        format="png",
                        captureBeyondViewport=True,
                        clip={"x": x, "y": y, "width": width, "height": height, "scale": 1},
                    )
                    result.screenshots[name] = base64.b64decode(shot["result"]["data"])
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return result
