"""Markdown (what models write) to Slack mrkdwn, splitting long replies, and Slack text to plain.

Slack renders `*bold*`, `_italic_`, `~strike~`, `` `code` ``, fenced code blocks without a
language, `<url|label>` links and `>` quotes; it has no headings, and `&`, `<`, `>` must be
escaped. Code is left as written (only escaped).
"""

from __future__ import annotations

import html
import re

_FENCE = re.compile(r"^(\s*)(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?=\S)")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_PLACEHOLDER = "\x00{}\x00"
SECTION_CHARS = 3000  # Slack's limit for a section block's text
_RESTORE = re.compile("\x00(\\d+)\x00")


def escape(text: str) -> str:
    """Escape the three characters Slack reserves for its own markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_to_mrkdwn(markdown: str) -> str:
    """Convert the Markdown a model writes into Slack's mrkdwn."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines():
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(2) == fence and not line.strip()[3:].strip():
                out.append("```")
                fence = None
            else:
                out.append(escape(line))
            continue
        if opening:
            fence = opening.group(2)
            out.append("```")  # Slack shows a language tag as code: drop it
            continue
        out.append(_convert_line(line))
    if fence is not None:
        out.append("```")  # an unfinished block (a streamed reply) still renders as code
    return "\n".join(out)


def _convert_line(line: str) -> str:
    if _RULE.match(line):
        return "───"
    heading = _HEADING.match(line)
    if heading:
        title = heading.group(1).strip("*_ ")
        return f"*{_convert_inline(title)}*" if title else ""
    quote = ""
    stripped = line.lstrip()
    if stripped.startswith(">"):
        quote, line = "&gt; ", stripped[1:].lstrip()
    bullet = _BULLET.match(line)
    if bullet:
        line = f"{bullet.group(1)}• {line[bullet.end():]}"
    return quote + _convert_inline(line)


def _convert_inline(text: str) -> str:
    kept: list[str] = []

    def keep(rendered: str) -> str:
        kept.append(rendered)
        return _PLACEHOLDER.format(len(kept) - 1)

    text = _INLINE_CODE.sub(lambda m: keep(f"`{escape(m.group(2))}`"), text)
    text = _IMAGE.sub(lambda m: keep(_link(m.group(2), m.group(1) or m.group(2))), text)
    text = _LINK.sub(lambda m: keep(_link(m.group(2), m.group(1))), text)
    text = _AUTOLINK.sub(lambda m: keep(_link(m.group(1), "")), text)
    text = escape(text)
    text = _BOLD.sub(lambda m: keep(f"*{m.group(2)}*"), text)
    text = _ITALIC_STAR.sub(lambda m: f"_{m.group(1)}_", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    while _RESTORE.search(text):
        text = _RESTORE.sub(lambda m: kept[int(m.group(1))], text)
    return text


def _link(url: str, label: str) -> str:
    url = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    label = escape(label).replace("|", "¦")
    return f"<{url}|{label}>" if label and label != url else f"<{url}>"


def split_message(text: str, limit: int) -> list[str]:
    """Split mrkdwn into pieces of at most `limit` characters.

    Cuts at a paragraph break if one is in the second half of the piece, else a line
    break, else a space, else anywhere; a code block cut in two is closed at the end of
    one piece and reopened at the start of the next, so each piece renders on its own.
    """
    if limit < 16:
        raise ValueError("limit must be at least 16 characters")
    pieces: list[str] = []
    reopen = False
    while text:
        prefix = "```\n" if reopen else ""
        room = limit - len(prefix)
        if len(text) <= room:
            piece, text = text, ""
        else:
            room -= 4  # keep space to close a code block
            cut = cut_point(text, room)
            piece, text = text[:cut].rstrip(" "), text[cut:]
            text = text[2:] if text.startswith("\n\n") else text[1:] if text[:1] in ("\n", " ") else text
        body = prefix + piece
        inside = body.count("```") % 2 == 1
        if inside:
            body = body.rstrip("\n") + "\n```"
        reopen = inside
        if body.strip() and body.strip() != "```\n```":
            pieces.append(body)
    return pieces or [""]


def cut_point(text: str, room: int) -> int:
    """Where to cut `text` to keep at most `room` characters: the last paragraph break, else
    line break, else space in the second half of the window, else `room`."""
    window = text[:room]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at >= room // 2:
            return at
    # Never cut an escape such as &amp; in half.
    amp = window.rfind("&", max(0, room - 6))
    if amp != -1 and ";" not in window[amp:]:
        return amp
    return room


def mrkdwn_sections(text: str) -> list[dict[str, object]]:
    """`text` (mrkdwn) as section blocks, for a message that also carries other blocks."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": piece}} for piece in split_message(text, SECTION_CHARS)]


_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL_MENTION = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_SUBTEAM = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>")
_LINK_IN = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")


def slack_to_text(text: str, *, bot_user_id: str | None = None) -> str:
    """A Slack message as plain text for the agent: the bot's own mention removed,
    other mentions and links made readable, entities unescaped."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>:?", "", text)
    text = _USER_MENTION.sub(lambda m: f"@{m.group(1)}", text)
    text = _CHANNEL_MENTION.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
    text = _SPECIAL.sub(lambda m: f"@{m.group(1)}", text)
    text = _SUBTEAM.sub(lambda m: m.group(1) or "@group", text)
    text = _LINK_IN.sub(
        lambda m: m.group(1) if not m.group(2) or m.group(2) == m.group(1) else f"{m.group(2)} ({m.group(1)})",
        text,
    )
    return html.unescape(text).strip()


def mentions(text: str, user_id: str | None) -> bool:
    """Whether a Slack message's text mentions `user_id`."""
    return bool(user_id) and re.search(rf"<@{re.escape(user_id or '')}(?:\|[^>]*)?>", text) is not None
