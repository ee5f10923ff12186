"""Files shared in a Slack message, read for the model.

Each file becomes an `ifriend.attachments.Attachment`: downloaded from its
`url_private_download` with the bot token in the `Authorization` header (never without it,
and only from Slack's file hosts or the configured API host), refused if larger than
`max_file_bytes` or of a type `allowed_file_types` does not list. A download answered with a
redirect (Slack sends a request without a valid token to its sign-in page), an HTML page for a
file that is not HTML, or an error status is refused too. A refusal says why, in words the
user can read.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ifriend.plugin_api import Attachment

from .events import SharedFile
from .settings import SlackSettings

log = logging.getLogger("ifriend_slack")

SLACK_FILE_DOMAINS = ("slack.com", "slack-gov.com")
CHUNK_BYTES = 64 * 1024


def allowed(mimetype: str, patterns: Sequence[str]) -> bool:
    """Whether `mimetype` matches one of `patterns` (`text/plain`, `image/*`)."""
    base = mimetype.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatchcase(base, pattern) for pattern in patterns)


def human_size(size: int) -> str:
    """`size` bytes for people: `41 bytes`, `4 KB`, `10 MB`, `1.5 MB`."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


class Refused(Exception):
    """A file the bot will not read; the message says why, for the user."""


class FileReader:
    """Reads shared files over one aiohttp session, each within the request timeout."""

    def __init__(self, settings: SlackSettings, *, session: Any) -> None:
        self.settings = settings
        self.session = session
        self.hosts = {urlsplit(settings.api_url).hostname or ""} - {""}

    async def read_all(self, files: Sequence[SharedFile], *, client: Any) -> list[Attachment]:
        """Every file of a message, read concurrently, in the message's order."""
        return list(await asyncio.gather(*(self.read(f, client=client) for f in files)))

    async def read(self, file: SharedFile, *, client: Any) -> Attachment:
        """The file's bytes as an attachment, or an attachment saying why it was not read."""
        try:
            if file.needs_info or file.url is None:
                file = await self._described(file, client)
            data = await self._download(file, token=client.token)
        except Refused as refusal:
            return _attachment(file, refused=str(refusal))
        return _attachment(file, data=data)

    async def _described(self, file: SharedFile, client: Any) -> SharedFile:
        try:
            response = await client.files_info(file=file.id)
        except Exception as exc:
            log.debug("files.info failed: %s", type(exc).__name__)
            raise Refused("Slack would not describe it (files.info failed)") from None
        described = SharedFile.parse(response.get("file") or {})
        if described is None or described.url is None:
            raise Refused("Slack gave no link to download it")
        return described

    async def _download(self, file: SharedFile, *, token: str | None) -> bytes:
        s = self.settings
        if not allowed(file.mimetype, s.allowed_file_types):
            raise Refused(f"files of type {file.mimetype} are not read here")
        limit = s.max_file_bytes
        if file.size is not None and file.size > limit:
            raise Refused(f"it is {human_size(file.size)}, over the {human_size(limit)} limit")
        if not token:
            raise Refused("there is no bot token to download it with")
        assert file.url is not None
        if not self._trusted(file.url):
            raise Refused("its link does not point to Slack")
        try:
            async with asyncio.timeout(s.request_timeout_seconds):
                async with self.session.get(
                    file.url, headers={"Authorization": f"Bearer {token}"}, allow_redirects=False
                ) as response:
                    if 300 <= response.status < 400:
                        raise Refused("the download was redirected (to Slack's sign-in page: the token was not accepted)")
                    if response.status != 200:
                        raise Refused(f"the download failed (HTTP {response.status})")
                    if response.content_type == "text/html" and not file.mimetype.startswith("text/html"):
                        raise Refused("Slack answered with a web page instead of the file")
                    data = bytearray()
                    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                        data += chunk
                        if len(data) > limit:
                            raise Refused(f"it is over the {human_size(limit)} limit")
        except TimeoutError:
            raise Refused("the download timed out") from None
        except aiohttp.ClientError as exc:
            raise Refused(f"the download failed ({type(exc).__name__})") from None
        return bytes(data)

    def _trusted(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host in self.hosts:
            return parts.scheme in ("https", "http")
        slack = any(host == d or host.endswith("." + d) for d in SLACK_FILE_DOMAINS)
        return slack and parts.scheme == "https"


def _attachment(file: SharedFile, *, data: bytes | None = None, refused: str | None = None) -> Attachment:
    size = len(data) if data is not None else file.size or 0
    return Attachment(
        name=file.name, mime_type=file.mimetype, size=size, data=data, source=f"slack:{file.id}", refused=refused
    )


def refusal_notice(attachments: Sequence[Attachment]) -> str:
    """Markdown telling the user which files were not read and why ("" if none)."""
    lines = [f"> I could not read **{a.name}**: {a.refused}." for a in attachments if a.refused is not None]
    return "\n".join(lines) + "\n\n" if lines else ""
