"""Sphinx extension (loaded from ``_config.yml``): keep the static site self-contained.

1. Jupyter Book adds *every* ``.js`` file under ``_static/`` to every page. The vendored
   JavaScript in ``_static/vendor/`` (MathJax's lazily loaded components, the widget
   manager) must only be loaded by what needs it, so it is taken out of that list again:
   MathJax comes in through ``mathjax_path``, the widget manager and require.js through
   myst-nb's ``nb_ipywidgets_js``, both pointing at ``_static/vendor/``.
2. The notebooks' "Open in Colab" badge is an image on colab.research.google.com (so that
   it shows in Colab and on GitHub); on the site it is replaced by ``_static/colab-badge.svg``.
3. Duplicate ``<script>`` entries are dropped (sphinx-thebe adds its inline configuration
   twice, which is a JavaScript error on every page).
4. After the build, every page is checked for resources (scripts, stylesheets, images,
   frames, fonts) loaded from another host; each one is a warning, so
   ``jupyter-book build -W`` fails on it.
"""

import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "_static/colab-badge.svg"
VENDORED_PREFIXES = ("vendor/", "offline/")  # under _static/; loaded only where needed

# Attributes that make the browser fetch something when the page loads.
_EXTERNAL = re.compile(
    r"""<(script|img|iframe|source|audio|video|embed)\b[^>]*?\ssrc=["'](?:https?:)?//"""
    r"""|<link\b(?=[^>]*\srel=["'](?:stylesheet|preload|icon|shortcut icon|modulepreload)["'])[^>]*\shref=["'](?:https?:)?//"""
    r"""|@import\s+(?:url\()?["']?(?:https?:)?//""",
    re.IGNORECASE,
)


def _not_vendored(entry):
    name = entry[0] if isinstance(entry, (tuple, list)) else entry
    return not str(name).startswith(VENDORED_PREFIXES)


def drop_vendored_js(app, config):
    config.html_js_files = [entry for entry in config.html_js_files if _not_vendored(entry)]
    config.html_css_files = [entry for entry in config.html_css_files if _not_vendored(entry)]


def dedupe_scripts(app, pagename, templatename, context, doctree):
    """sphinx-thebe and sphinx-togglebutton register their inline configuration twice
    (once with filename None, once with ''), and a repeated ``const`` throws in the browser
    ("Identifier 'THEBE_JS_URL' has already been declared"); keep one of each script.
    The list is edited in place: it is the builder's, which later handlers add to."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, kept = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        key = (getattr(script, "filename", str(script)) or "", repr(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def local_badge(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if body and COLAB_BADGE in body:
        context["body"] = body.replace(COLAB_BADGE, context["pathto"](LOCAL_BADGE, 1))


def external_resources(html_text):
    """The external resource references in a page (empty: the page is self-contained)."""
    found = []
    for match in _EXTERNAL.finditer(html_text):
        end = html_text.find(">", match.end())
        found.append(html_text[match.start() : end + 1 if end != -1 else match.end() + 80][:200])
    return found


def check_offline(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    # The pages of this book only: a stale page left in _build/html by an older build is not
    # part of the site, and must not fail this one.
    names = sorted(app.env.found_docs) + ["genindex", "search"]
    pages = [outdir / app.builder.get_target_uri(name) for name in names]
    for page in (page for page in pages if page.is_file()):
        for snippet in external_resources(page.read_text(encoding="utf-8", errors="replace")):
            logger.warning(
                "%s loads a resource from another host, so the site would not work offline: %s",
                page.relative_to(outdir),
                snippet,
                type="offline",
                subtype="external",
            )


def setup(app):
    app.connect("config-inited", drop_vendored_js)
    app.connect("html-page-context", dedupe_scripts)
    app.connect("html-page-context", local_badge)
    app.connect("build-finished", check_offline)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
