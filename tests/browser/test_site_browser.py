"""Every page of the built book, offline, in Chromium: loads cleanly, maths typeset, widgets
rendered (never blank, never a widget's text repr), and on every chapter the precomputed
sliders (``coursekit.widgets.frame_slider``) change the picture without a kernel.

See conftest.py for how to run these. A JSON summary of what was exercised is written to
``_build/browser-test-report.json``.
"""

import io
import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BOOK = Path(os.environ.get("BOOK_DIR", ROOT)).resolve()  # as in conftest.py
SITE = BOOK / "_build" / "html"

sys.path.insert(0, str(ROOT / "scripts"))
from offline_site import external_resources  # noqa: E402

REPORT = SITE.parent / "browser-test-report.json"
_report = {"pages": {}, "sliders": []}

WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'
# What a widget shows when it failed to render: its Python repr, e.g. "IntSlider(value=3, ...)".
WIDGET_REPR = re.compile(r"\b(?:Int|Float)?[A-Z]\w*\((?:children|value|description|layout|options|outputs)=")
PLACEHOLDER = "This page is being written"


def toc_files(toc_path=BOOK / "_toc.yml"):
    """Every document of the book, in order: the root, then each ``file`` of ``_toc.yml``."""
    if not toc_path.exists():
        return []
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({key: value for key, value in toc.items() if key != "root"})
    return [re.sub(r"\.(md|ipynb)$", "", f) for f in files]


PAGES = [f"{name}.html" for name in toc_files()] + ["genindex.html", "search.html"]
CHAPTERS = [page for page in PAGES if page.startswith("chapters/")]


@pytest.fixture(scope="module", autouse=True)
def write_report():
    yield
    REPORT.write_text(json.dumps(_report, indent=2) + "\n", encoding="utf-8")


def settle(page):
    """Wait until the widgets are rendered and MathJax has typeset the page."""
    views = page.locator(WIDGET_VIEW).count()
    if views:
        page.wait_for_function(
            """n => Array.from(document.querySelectorAll('.widget-subarea'))
                        .filter(e => e.children.length > 0).length >= n""",
            arg=views,
            timeout=60_000,
        )
    if page.locator(".math").count():
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=60_000)
        page.evaluate("() => MathJax.startup.promise.then(() => true)")
    page.wait_for_load_state("networkidle")
    return views


def open_page(page, url):
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, f"{url}: HTTP {response.status if response else 'no response'}"
    return settle(page)


def test_every_toc_page_was_built():
    missing = [page for page in PAGES if not (SITE / page).exists()]
    assert not missing, f"pages in _toc.yml missing from {SITE}: {missing}"


@pytest.mark.parametrize("name", PAGES)
def test_page_is_self_contained(name):
    """No page refers to a script, stylesheet, image or font on another host."""
    found = external_resources((SITE / name).read_text(encoding="utf-8"))
    assert not found, f"{name} loads from another host (would fail offline): {found}"


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_offline(offline_page, site_url, name):
    page = offline_page
    views = open_page(page, f"{site_url}/{name}")
    info = page.evaluate(
        """() => {
            const main = document.querySelector('main') || document.body;
            const visible = e => !!(e.offsetParent || e.getClientRects().length);
            const imgs = Array.from(main.querySelectorAll('img')).filter(visible);
            return {
              text: Array.from(main.querySelectorAll('.cell_output')).map(e => e.innerText).join(' | '),
              images: imgs.map(i => ({alt: i.getAttribute('alt'), ok: i.complete && i.naturalWidth > 0,
                                      src: i.getAttribute('src').slice(0, 60)})),
              blankWidgets: Array.from(document.querySelectorAll('.widget-subarea'))
                                 .filter(e => e.getBoundingClientRect().height < 5).length,
              errorWidgets: document.querySelectorAll('.jupyter-widgets-error-widget, .widget-error').length,
              // pictures a frame slider shows in its own Tab (it may sit in a hidden outer tab)
              frameWidgets: Array.from(document.querySelectorAll('.ck-frame-widget')).map(w => {
                  const frames = w.querySelector('.ck-frames');
                  const shown = i => { for (let e = i; e && e !== frames; e = e.parentElement) {
                      if (getComputedStyle(e).display === 'none') return false; } return true; };
                  return Array.from(frames.querySelectorAll('img'))
                      .filter(i => i.complete && i.naturalWidth > 0).filter(shown).length; }),
              livePlots: Array.from(document.querySelectorAll('.ck-live-plot')).map(w => ({
                  pictures: Array.from(w.querySelectorAll('img')).filter(i => i.naturalWidth > 0).length,
                  text: (w.querySelector('.widget-output') || {innerText: ''}).innerText.trim().length,
                  note: visible(w.querySelector('.ck-static-only') || document.createElement('i'))})),
            };
        }"""
    )
    _report["pages"][name] = {
        "widget_views": views,
        "frame_sliders": len(info["frameWidgets"]),
        "live_plots": len(info["livePlots"]),
        "images": len(info["images"]),
        "maths": page.locator("mjx-container").count(),
    }
    problems = page.log.problems()
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)
    assert info["errorWidgets"] == 0, f"{name}: {info['errorWidgets']} widget(s) failed to render"
    assert info["blankWidgets"] == 0, f"{name}: {info['blankWidgets']} widget(s) rendered blank"
    repr_text = WIDGET_REPR.search(info["text"])
    assert not repr_text, f"{name}: a widget shows as text ({repr_text.group(0)}...): its state is not embedded"
    for index, shown in enumerate(info["frameWidgets"]):
        assert shown == 1, f"{name}: frame slider {index} shows {shown} pictures (expected exactly 1)"
    for index, live in enumerate(info["livePlots"]):
        assert live["pictures"] or live["text"], f"{name}: live plot {index} shows nothing on the static page"
        assert live["note"], f"{name}: live plot {index} lacks the note that its controls need a kernel"
    broken = [image["src"] for image in info["images"] if not image["ok"]]
    assert not broken, f"{name}: images that did not load: {broken}"
    no_alt = [
        image["src"]
        for image in info["images"]
        if not (image["alt"] or "").strip() or re.search(r"\.(png|svg|jpe?g)$|^_images/", image["alt"])
    ]
    assert not no_alt, (
        f"{name}: figures without alt text (give the cell metadata "
        f'{{"mystnb": {{"image": {{"alt": "..."}}}}}}; see CONTRIBUTING.md): {no_alt}'
    )


@pytest.mark.parametrize("name", PAGES)
def test_maths_is_typeset(offline_page, site_url, name):
    page = offline_page
    open_page(page, f"{site_url}/{name}")
    total = page.locator(".math").count()
    if not total:
        pytest.skip(f"{name} has no maths")
    untypeset = page.evaluate(
        "() => Array.from(document.querySelectorAll('.math'))"
        ".filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60))"
    )
    assert not untypeset, f"{name}: maths not typeset by MathJax: {untypeset}"
    errors = page.evaluate("() => Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent)")
    assert not errors, f"{name}: TeX errors: {errors}"


def _visible_frame(widget):
    return widget.evaluate(
        """w => {
            const img = Array.from(w.querySelectorAll('.ck-frames img'))
                             .find(i => i.offsetParent && i.getBoundingClientRect().height > 0);
            const readout = img ? img.parentElement.querySelector('.ck-readout') : null;
            return img ? {src: img.src.slice(-80), alt: img.alt,
                          readout: readout ? readout.innerText : ''} : null;
        }"""
    )


def _reveal(widget):
    """A frame slider inside an outer Tab's hidden page: click that page's tab (outermost
    first) so that the slider can be seen and moved. Returns the tabs' labels."""
    clicked = []
    while True:
        tab = widget.evaluate_handle(
            """w => {
                let chain = [];
                for (let e = w; e && e.parentElement; e = e.parentElement) {
                    const panel = e.parentElement;
                    if (panel.classList.contains('widget-tab-contents') && getComputedStyle(e).display === 'none') {
                        chain.push([panel, Array.from(panel.children).indexOf(e)]);
                    }
                }
                if (!chain.length) return null;
                const [panel, index] = chain[chain.length - 1];
                const bar = panel.parentElement.querySelector(':scope > .lm-TabBar, :scope > .p-TabBar');
                return bar ? bar.querySelectorAll('.lm-TabBar-tab, .p-TabBar-tab')[index] : null;
            }"""
        )
        element = tab.as_element()
        if element is None or len(clicked) > 5:
            return clicked
        clicked.append(element.inner_text())
        element.click()


def _move(page, widget):
    """Move the slider one step (keyboard), else click the far end of its track."""
    handle = widget.locator(".noUi-handle, .ui-slider-handle").first
    now = float(handle.get_attribute("aria-valuenow") or 0)
    top = float(handle.get_attribute("aria-valuemax") or 1)
    handle.focus()
    page.keyboard.press("ArrowRight" if now < top else "ArrowLeft")
    return "keyboard " + ("ArrowRight" if now < top else "ArrowLeft")


def _click_track(page, widget, towards_end):
    track = widget.locator(".noUi-target, .ui-slider").first
    box = track.bounding_box()
    x = box["x"] + box["width"] * (0.97 if towards_end else 0.03)
    page.mouse.click(x, box["y"] + box["height"] / 2)
    return "mouse click on the track"


def _changed_pixels(before_png, after_png):
    from PIL import Image, ImageChops

    before = Image.open(io.BytesIO(before_png)).convert("RGB")
    after = Image.open(io.BytesIO(after_png)).convert("RGB")
    if before.size != after.size:
        return max(before.size[0] * before.size[1], after.size[0] * after.size[1])
    difference = ImageChops.difference(before, after).convert("L").point(lambda v: 255 if v > 24 else 0)
    return difference.histogram()[255]


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_sliders_work_without_a_kernel(offline_page, site_url, name):
    page = offline_page
    open_page(page, f"{site_url}/{name}")
    widgets = page.locator(".ck-frame-widget")
    count = widgets.count()
    if count == 0:
        if PLACEHOLDER in page.inner_text("main"):
            pytest.skip(f"{name} is still a placeholder")
        pytest.fail(f"{name} has no frame_slider: a chapter's key widget must stay interactive on the site")
    for index in range(count):
        widget = widgets.nth(index)
        revealed = _reveal(widget)
        widget.scroll_into_view_if_needed()
        frames = widget.locator(".ck-frames")
        before = _visible_frame(widget)
        before_png = frames.screenshot()
        how = _move(page, widget)
        try:
            page.wait_for_function(
                "([w, src]) => { const i = Array.from(w.querySelectorAll('.ck-frames img'))"
                ".find(i => i.offsetParent); return i && i.src.slice(-80) !== src; }",
                arg=[widget.element_handle(), before["src"]],
                timeout=3_000,
            )
        except Exception:
            how = _click_track(page, widget, towards_end=before["src"] == _visible_frame(widget)["src"])
            page.wait_for_timeout(500)
        after = _visible_frame(widget)
        page.wait_for_timeout(100)
        after_png = frames.screenshot()
        changed = _changed_pixels(before_png, after_png)
        _report["sliders"].append(
            {
                "page": name,
                "widget": index,
                "moved_by": how,
                "revealed_by_clicking": revealed,
                "before": before["readout"],
                "after": after["readout"],
                "alt_after": after["alt"][:120],
                "changed_pixels": changed,
            }
        )
        assert after["src"] != before["src"], f"{name}: moving frame slider {index} did not change the picture"
        assert changed > 200, (
            f"{name}: frame slider {index}: the screenshot changed by only {changed} pixels after moving the slider"
        )
        assert page.log.problems() == [], f"{name}: {page.log.problems()}"
