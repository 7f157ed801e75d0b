"""Widgets that work live (Jupyter, Colab; ipywidgets 7 and 8) *and* on the static site.

Two kinds:

* :func:`frame_slider` precomputes one picture per slider value and links the slider to
  the pictures client-side with ``jslink``, so it stays interactive on the static page
  without a kernel.
* :func:`live_plot` redraws a matplotlib figure from Python on every change; on the static
  page it shows the picture of the initial values (embedded in an ``Output`` widget's state).
"""
import io

import ipywidgets as widgets
import matplotlib.pyplot as plt


def figure_to_png(fig, dpi=80):
    """PNG bytes of a matplotlib figure, closing it so it is not displayed twice."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def frame_slider(draw, values, description, value=None, readout_labels=None):
    """A slider over ``values`` showing ``draw(v)`` (a matplotlib figure) for each.

    All frames are drawn once, up front, and the slider selects among them in the browser
    (``jslink`` to a ``Tab``'s ``selected_index``), so it needs no kernel.
    Keep frames few and small: every one is embedded in the page.
    """
    values = list(values)
    images = [widgets.Image(value=figure_to_png(draw(v)), format="png") for v in values]
    tabs = widgets.Tab(children=images)
    labels = readout_labels or [str(v) for v in values]
    for i, label in enumerate(labels):
        tabs.set_title(i, label)
    start = values.index(value) if value in values else 0
    slider = widgets.IntSlider(
        value=start, min=0, max=len(values) - 1, description=description, readout=False,
        continuous_update=True, layout=widgets.Layout(width="420px"),
        style={"description_width": "initial"},
    )
    tabs.selected_index = start
    widgets.jslink((slider, "value"), (tabs, "selected_index"))
    return widgets.VBox([slider, tabs])


def live_plot(draw, **controls):
    """``draw(**values)`` redrawn whenever a control changes; returns the assembled widget.

    ``controls`` are ipywidgets (sliders, dropdowns...). Uses ``interactive_output`` so the
    first picture is stored with the page.
    """
    output = widgets.interactive_output(draw, controls)
    return widgets.VBox([widgets.HBox(list(controls.values())), output])
