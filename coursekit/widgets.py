"""Widgets that work live (Jupyter, Colab; ipywidgets 7 and 8) *and* on the static site.

Two kinds:

* :func:`frame_slider` precomputes one picture per slider value and links the slider to
  the pictures client-side with ``jslink``, so it stays interactive on the static page
  without a kernel.
* :func:`live_plot` redraws a matplotlib figure from Python on every change; on the static
  page it shows the picture of the initial values (stored in the page with the widget).

Pictures are PNGs inside ``HTML`` widgets (``<img alt=...>``), not ``Image`` widgets, so
that every picture carries alt text. Alt text comes, in order of preference, from
``set_alt(fig, text)`` called in the drawing function, from ``frame_slider``'s ``alt``
argument, or is made up from the figure's titles and axis labels plus the control's value.
"""

import base64
import html
import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

# Scoped to the classes below; injected with the widget (live notebooks, Colab) and also
# in the site's _static/course.css.
_STYLE = (
    "<style>"
    ".ck-frames > .lm-TabBar, .ck-frames > .p-TabBar, .ck-frames > .widget-tab-bar {display: none !important;}"
    ".ck-frames > .widget-tab-contents, .ck-frames > .lm-StackedPanel, .ck-frames > .p-StackedPanel"
    " {border: none !important; padding: 0 !important; overflow: visible !important;}"
    ".ck-picture img {max-width: 100%; height: auto;}"
    ".ck-readout {font-size: 90%; margin: 2px 0 4px 0;}"
    "</style>"
)
_ALT_ATTRIBUTE = "_coursekit_alt"


def figure_to_png(fig, dpi=80):
    """PNG bytes of a matplotlib figure, closing it so it is not displayed twice."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def set_alt(fig, text):
    """Attach alt text (what a reader who cannot see the picture should know) to ``fig``.

    Call it in a ``draw`` function given to :func:`frame_slider` or :func:`live_plot`;
    returns ``fig`` so that ``return set_alt(fig, "...")`` works.
    """
    setattr(fig, _ALT_ATTRIBUTE, str(text))
    return fig


def describe_figure(fig):
    """A plain description of ``fig`` from its titles and axis labels (may be empty)."""
    parts = []
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        parts.append(suptitle.get_text())
    for ax in fig.get_axes():
        bits = [ax.get_title()]
        if ax.get_xlabel():
            bits.append(f"x: {ax.get_xlabel()}")
        if ax.get_ylabel():
            bits.append(f"y: {ax.get_ylabel()}")
        bits = [b for b in bits if b]
        if bits:
            parts.append(", ".join(bits))
    return "; ".join(parts)


def _alt_for(fig, given, context):
    """Alt text: ``set_alt`` on the figure, else ``given``, else the figure's labels."""
    text = getattr(fig, _ALT_ATTRIBUTE, None) or given
    if not text:
        described = describe_figure(fig)
        text = f"Figure for {context}. {described}" if described else f"Figure for {context}"
    return " ".join(str(text).split())


def picture_html(fig, alt, dpi=80):
    """``<img>`` tag (PNG data URI, with alt text) for ``fig``, which is closed."""
    data = base64.b64encode(figure_to_png(fig, dpi=dpi)).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt, quote=True)}"/>'


def _readout_text(description, label, labelled):
    name = description.rstrip(" :")
    return str(label) if labelled or not name else f"{name} = {label}"


def _frame(draw, v, description, label, labelled, alt, dpi):
    fig = draw(v)
    if not isinstance(fig, Figure):
        fig = plt.gcf()
    readout = _readout_text(description, label, labelled)
    given = alt(v) if callable(alt) else (alt.format(value=v, label=label) if alt else None)
    text = _alt_for(fig, given, readout)
    return widgets.HTML(
        value=f'<div class="ck-readout">{html.escape(readout)}</div>' + picture_html(fig, text, dpi=dpi)
    )


def frame_slider(draw, values, description, value=None, readout_labels=None, *, alt=None, dpi=80):
    """A slider over ``values`` showing ``draw(v)`` (a matplotlib figure) for each.

    All frames are drawn once, up front, and the slider selects among them in the browser
    (``jslink`` to a ``Tab``'s ``selected_index``; the tab bar is hidden), so it needs no
    kernel. Keep frames few and small: every one is embedded in the page.

    ``readout_labels`` (one string per value) are shown above the picture instead of
    ``"description = value"``. ``alt`` is the pictures' alt text: a string (may use
    ``{value}`` and ``{label}``) or a function of the value; ``set_alt`` inside ``draw``
    takes precedence; without either, alt text is made from the figure's labels.
    """
    values = list(values)
    if not values:
        raise ValueError("frame_slider needs at least one value")
    labelled = readout_labels is not None
    labels = [str(label) for label in readout_labels] if labelled else [str(v) for v in values]
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} readout_labels for {len(values)} values")
    frames = [_frame(draw, v, description, label, labelled, alt, dpi) for v, label in zip(values, labels)]
    tabs = widgets.Tab(children=frames)
    for i, label in enumerate(labels):
        tabs.set_title(i, label)
    tabs.add_class("ck-frames")
    tabs.add_class("ck-picture")
    start = values.index(value) if value in values else 0
    slider = widgets.IntSlider(
        value=start,
        min=0,
        max=len(values) - 1,
        description=description,
        readout=False,
        continuous_update=True,
        layout=widgets.Layout(width="420px"),
        style={"description_width": "initial"},
    )
    slider.add_class("ck-frame-slider")
    tabs.selected_index = start
    link = widgets.jslink((slider, "value"), (tabs, "selected_index"))
    box = widgets.VBox([widgets.HTML(_STYLE), slider, tabs])
    box.add_class("ck-frame-widget")
    box.frame_link = link  # the client-side link (kept for tests and for unlinking)
    return box


_STATIC_NOTE = (
    '<div class="ck-static-only" style="display:none">'
    "This picture was drawn for the starting values. To move the controls, open the "
    "notebook in Colab (badge at the top of the page) or in Jupyter."
    "</div>"
)


class _show_deferred:
    """Make ``plt.show()`` inside a draw function a no-op, so that its figures are turned
    into ``<img alt=...>`` here instead of being displayed without alt text."""

    def __enter__(self):
        self.saved = plt.show
        plt.show = lambda *args, **kwargs: None

    def __exit__(self, *exc):
        plt.show = self.saved
        return False


def live_plot(draw, **controls):
    """``draw(**values)`` redrawn whenever a control changes; returns the assembled widget.

    ``controls`` are ipywidgets (sliders, dropdowns...), passed to ``draw`` by name.
    ``draw`` may return a figure, or draw with ``plt`` (and even call ``plt.show()``);
    anything it prints is shown below the picture. The picture of the starting values is
    stored with the page, so the static site shows it (with a note that the controls
    need a kernel).
    """
    picture = widgets.HTML()
    picture.add_class("ck-picture")
    output = widgets.Output()

    def update(change=None):
        values = {name: control.value for name, control in controls.items()}
        before = set(plt.get_fignums())
        output.clear_output(wait=True)
        result = None
        with output, _show_deferred():
            result = draw(**values)
        figures = [plt.figure(n) for n in plt.get_fignums() if n not in before]
        if isinstance(result, Figure) and result not in figures:
            figures.append(result)
        context = ", ".join(f"{name} = {value}" for name, value in values.items())
        picture.value = "".join(picture_html(fig, _alt_for(fig, None, context)) for fig in figures)

    for control in controls.values():
        control.observe(update, names="value")
    update()
    box = widgets.VBox([widgets.HBox(list(controls.values())), widgets.HTML(_STYLE + _STATIC_NOTE), picture, output])
    box.add_class("ck-live-plot")
    return box
