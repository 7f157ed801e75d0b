"""The static site's machinery, without building it: vendored JavaScript, its configuration,
the offline check, and the widgets (their pictures, alt text and client-side links).

The built site itself is tested in a browser by tests/browser (run after the build).
"""

import html
import json
import re
import sys
from pathlib import Path

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import yaml

from coursekit import widgets as ck

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import offline_site  # noqa: E402
import vendor_js  # noqa: E402

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
SPHINX = CONFIG["sphinx"]["config"]


def test_vendored_files_match_the_manifest():
    assert vendor_js.check() == [], "run: python scripts/vendor_js.py (needs npm), then commit _static/vendor"


def test_site_javascript_is_local():
    mathjax = SPHINX["mathjax_path"]
    assert "://" not in mathjax and (ROOT / "_static" / mathjax).exists(), mathjax
    scripts = list(SPHINX["nb_ipywidgets_js"])
    assert scripts, "nb_ipywidgets_js must list the local require.js and widget manager"
    for script in scripts:
        assert "://" not in script and (ROOT / "_static" / script).exists(), script
    assert scripts.index("vendor/requirejs/require.js") < scripts.index("vendor/html-manager/embed-amd.js")
    assert CONFIG["sphinx"]["local_extensions"] == {"offline_site": "scripts", "parallel_execute": "scripts"}


def test_widget_manager_matches_ipywidgets():
    """html-manager 1.x renders ipywidgets 8 state; 0.20.x would be needed for ipywidgets 7."""
    manifest = json.loads((ROOT / "_static" / "vendor" / "manifest.json").read_text(encoding="utf-8"))
    manager = manifest["packages"]["@jupyter-widgets/html-manager"]["version"]
    expected_major = {"8": "1", "7": "0"}[widgets.__version__.split(".")[0]]
    assert manager.split(".")[0] == expected_major, (
        f"the site is built with ipywidgets {widgets.__version__} but vendors html-manager {manager}"
    )


def test_offline_check_finds_external_resources():
    page = """<script src="https://cdn.example.org/x.js"></script>
    <link rel="stylesheet" href="//fonts.example.org/a.css"><img src="http://example.org/i.png" alt="x">
    <a href="https://example.org/">a link is fine</a><script src="_static/local.js"></script>
    <link rel="canonical" href="https://example.org/page.html">"""
    found = offline_site.external_resources(page)
    assert len(found) == 3, found
    assert offline_site.external_resources('<script src="_static/vendor/requirejs/require.js"></script>') == []


def _draw(value):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, value])
    ax.set_title(f"slope {value}")
    ax.set_xlabel("x")
    return fig


def _images(html_text):
    return re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]*)"/>', html_text)


def test_frame_slider_links_slider_and_frames_client_side():
    box = ck.frame_slider(_draw, [1, 2, 3], "slope", value=2)
    style, slider, tabs = box.children
    assert isinstance(slider, widgets.IntSlider) and isinstance(tabs, widgets.Tab)
    assert (slider.min, slider.max, slider.value, tabs.selected_index) == (0, 2, 1, 1)
    assert "ck-frames" in tabs._dom_classes and "<style>" in style.value
    frames = [frame.value for frame in tabs.children]
    assert [len(_images(frame)) for frame in frames] == [1, 1, 1]
    assert len(set(frames)) == 3, "every value must get its own picture"
    assert "slope = 2" in frames[1]
    assert _images(frames[1])[0] == "Figure for slope = 2. slope 2, x: x", _images(frames[1])
    link = box.frame_link
    assert link.source == (slider, "value") and link.target == (tabs, "selected_index"), (
        "the slider must be jslinked to the frames (works without a kernel)"
    )
    assert type(link).__name__ == "Link" and link._model_name == "LinkModel"
    assert plt.get_fignums() == [], "frames must be closed, not displayed again below the widget"


def test_frame_slider_alt_text_and_labels():
    box = ck.frame_slider(
        _draw, [1, 2], "slope", readout_labels=["gentle", "steep"], alt="A line of {label} slope ({value})"
    )
    frames = [frame.value for frame in box.children[2].children]
    assert _images(frames[1]) == ["A line of steep slope (2)"]
    assert '<div class="ck-readout">steep</div>' in frames[1]

    def described(value):
        return ck.set_alt(_draw(value), f"set by draw: {value} <&>")

    box = ck.frame_slider(described, [5], "slope", alt=lambda v: "ignored")
    assert _images(box.children[2].children[0].value) == [html.escape("set by draw: 5 <&>")]
    with pytest.raises(ValueError):
        ck.frame_slider(_draw, [1, 2], "slope", readout_labels=["one"])


def test_live_plot_stores_the_first_picture_and_redraws():
    slope = widgets.IntSlider(value=1, min=1, max=3, description="slope")

    def draw(slope):  # draws with plt and calls plt.show(), as notebooks do
        plt.plot([0, 1], [0, slope])
        plt.title(f"slope {slope}")
        plt.show()

    box = ck.live_plot(draw, slope=slope)
    controls, note, picture, output = box.children
    assert controls.children == (slope,)
    assert "ck-static-only" in note.value and 'style="display:none"' in note.value
    first = picture.value
    assert _images(first) == ["Figure for slope = 1. slope 1"]
    slope.value = 3
    assert _images(picture.value) == ["Figure for slope = 3. slope 3"] and picture.value != first
    assert plt.get_fignums() == []


def test_live_plot_accepts_a_returned_figure():
    box = ck.live_plot(lambda slope: _draw(slope), slope=widgets.IntSlider(value=2))
    assert len(_images(box.children[2].value)) == 1
