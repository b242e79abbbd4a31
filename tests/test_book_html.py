"""The built book, checked as a reader meets it: in a real browser (Chromium driven by Playwright), offline.

These tests read `_build/html` (made by `scripts/build-book`, which `scripts/run-tests` runs first). The browser
tests need Chromium at /usr/bin/chromium (Debian's `chromium` package, which `.ci/run` installs) and the Python
package playwright (pinned in requirements.txt); without them they are skipped with a message saying how to
enable them. The link check needs no browser.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))  # override to check another build
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not (SITE / "index.html").exists(),
    reason="the book is not built: run `bash scripts/build-book` (scripts/run-tests does it first)",
)


def _pages() -> list[Path]:
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    return sorted(p for p in SITE.rglob("*.html")
                  if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_internal_link_and_anchor_resolves():
    broken = []
    for page in _pages():
        for href in _parse(page).hrefs:
            if urlparse(href).scheme or href.startswith(("mailto:", "//", "javascript:")):
                continue
            target, fragment = urldefrag(href)
            dest = page if not target else (page.parent / unquote(target)).resolve()
            if dest.is_dir():
                dest = dest / "index.html"
            if not dest.exists():
                broken.append(f"{page.relative_to(SITE)}: {href} (no such file)")
            elif fragment and dest.suffix == ".html" and unquote(fragment) not in _parse(dest).ids:
                broken.append(f"{page.relative_to(SITE)}: {href} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:50])


def test_no_glue_placeholder_or_unrendered_role_left():
    bad = []
    pattern = re.compile(r"\{glue:|\{eq\}`|\{cite:|\{prf:ref\}|\{numref\}|Missing key|glue key")
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for m in pattern.finditer(text):
            bad.append(f"{page.relative_to(SITE)}: ...{text[max(0, m.start() - 60):m.end() + 60]}...")
    assert not bad, "\n".join(bad[:20])


def test_mathjax_is_served_by_the_site():
    """The book reads offline: MathJax comes from the built site, not from a CDN."""
    assert (SITE / "mathjax" / "tex-mml-chtml.js").exists()
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        assert "cdn.jsdelivr.net" not in text and "mathjax@3" not in text, page


# ---------------------------------------------------------------------------------------------- browser


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: `pip install -r requirements.txt`"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return (f"no Chromium at {CHROMIUM}: install Debian's `chromium` package (`apt-get install chromium`, as "
                f".ci/run does) or set CHROMIUM=/path/to/chromium to run the browser tests")
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site_url():
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    missing = _browser_missing()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


def _open(browser, url):
    """Open ``url``; return the page and the lists of console errors and failed requests it caused."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, failed = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
    page.on("response", lambda r: failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return page, errors, failed


_MATH_READY = "() => !window.MathJax || !MathJax.startup || !MathJax.startup.promise ? true : MathJax.startup.promise.then(() => true)"

_PAGE_REPORT = """() => {
  const body = document.querySelector('main') || document.body;
  const clone = body.cloneNode(true);
  clone.querySelectorAll('pre, code, mjx-container, script, style, .highlight').forEach(e => e.remove());
  const text = clone.innerText;
  return {
    mathErrors: document.querySelectorAll('mjx-merror, .MathJax_Error').length,
    rawMath: (text.match(/\\$\\$|\\\\begin\\{|\\\\end\\{|\\\\frac|\\\\varepsilon/g) || []).length,
    mathCount: document.querySelectorAll('mjx-container').length,
    badImages: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
    noAlt: Array.from(document.querySelectorAll('main img')).filter(i => !(i.getAttribute('alt') || '').trim()).map(i => i.src),
    uncaptioned: Array.from(document.querySelectorAll('main figure')).filter(f => !(f.querySelector('figcaption') && f.querySelector('figcaption').innerText.trim())).length,
  };
}"""


def test_every_page_renders_offline_in_a_browser(browser, site_url):
    problems = []
    for path in _pages():
        rel = path.relative_to(SITE).as_posix()
        page, errors, failed = _open(browser, f"{site_url}/{rel}")
        page.evaluate(_MATH_READY)
        report = page.evaluate(_PAGE_REPORT)
        page.close()
        for what, bad in [("console errors", errors), ("failed requests", failed),
                          ("images not loaded", report["badImages"]), ("images without alt text", report["noAlt"])]:
            if bad:
                problems.append(f"{rel}: {what}: {bad[:5]}")
        if report["mathErrors"]:
            problems.append(f"{rel}: {report['mathErrors']} MathJax errors")
        if report["rawMath"]:
            problems.append(f"{rel}: {report['rawMath']} pieces of raw TeX left in the text")
        if report["uncaptioned"]:
            problems.append(f"{rel}: {report['uncaptioned']} figures without a caption")
    assert not problems, "\n".join(problems)


def test_search_finds_sandwich(browser, site_url):
    page, errors, failed = _open(browser, f"{site_url}/search.html?q=sandwich")
    page.wait_for_selector("ul.search li", timeout=20_000)
    hits = page.locator("ul.search li").count()
    page.close()
    assert hits > 0 and not failed, (hits, failed)


def test_screenshots_of_three_pages(browser, site_url):
    """For review by a person: the preface, a derivation-heavy chapter and the API reference."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    chapters = [p.relative_to(SITE).as_posix() for p in _pages() if p.parent.name == "chapters"]
    wanted = ["chapters/intro.html",
              next((c for c in chapters if "05_" in c), chapters[len(chapters) // 2]),
              next((c for c in chapters if "api" in c), chapters[-1])]
    for rel in wanted:
        page, _, _ = _open(browser, f"{site_url}/{rel}")
        page.evaluate(_MATH_READY)
        out = SHOTS / (Path(rel).stem + ".png")
        page.screenshot(path=str(out), full_page=False)
        page.close()
        assert out.stat().st_size > 10_000, out
