"""Small plotting helpers shared by the chapters: attention maps and loss curves.

Every function draws on a matplotlib ``ax`` (made for you when omitted) and returns it, so
the same call works in a notebook cell, in a subplot grid, and inside the ``draw`` function
of :func:`coursekit.widgets.frame_slider` / :func:`~coursekit.widgets.live_plot` (use
``ax.figure`` to get the figure back). Tensors may be given as they are: they are detached
and moved to the CPU here.

Conventions: attention weights are ``(q_len, k_len)``, rows are queries, columns are keys,
as in the rest of the course.
"""

import matplotlib.pyplot as plt
import numpy as np


def to_numpy(values):
    """A NumPy array from a tensor (any device, with or without grad), array or nested list."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().float().numpy()
    return np.asarray(values, dtype=float)


def _new_ax(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_attention(
    weights,
    row_labels=None,
    col_labels=None,
    ax=None,
    title=None,
    annotate=None,
    cmap="Blues",
    vmin=0.0,
    vmax=1.0,
    colorbar=False,
):
    """Heatmap of one attention matrix: row ``i`` is how query ``i`` spreads its attention.

    Args:
        weights: ``(q_len, k_len)`` tensor or array (leading size-1 dimensions are squeezed).
        row_labels, col_labels: tick labels for queries (rows) and keys (columns).
        ax: the axes to draw on; a new figure is made when omitted.
        title: the axes title.
        annotate: write each weight in its cell (default: when the matrix has at most 12 x 12 cells).
        cmap, vmin, vmax: the colour scale; the default 0..1 is the range of softmax weights,
            so two maps drawn side by side are comparable.
        colorbar: add a colour bar.

    Returns:
        The axes.
    """
    weights = to_numpy(weights)
    while weights.ndim > 2 and weights.shape[0] == 1:
        weights = weights[0]
    if weights.ndim != 2:
        raise ValueError(
            f"plot_attention draws one (q_len, k_len) matrix, got shape {weights.shape}; "
            "pick a batch element and a head first, e.g. weights[0, head]"
        )
    q_len, k_len = weights.shape
    ax = _new_ax(ax, (0.5 * k_len + 1.5, 0.5 * q_len + 1.0))
    image = ax.imshow(weights, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(k_len))
    ax.set_yticks(range(q_len))
    if col_labels is not None:
        ax.set_xticklabels(col_labels, rotation=45 if max(map(len, map(str, col_labels))) > 3 else 0)
    if row_labels is not None:
        ax.set_yticklabels(row_labels)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query")
    if annotate is None:
        annotate = q_len <= 12 and k_len <= 12
    if annotate:
        middle = (vmin + vmax) / 2 if vmin is not None and vmax is not None else np.nanmean(weights)
        for i in range(q_len):
            for j in range(k_len):
                value = weights[i, j]
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if value > middle else "black",
                )
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title)
    return ax


def plot_attention_heads(weights, row_labels=None, col_labels=None, titles=None, suptitle=None, size=2.6, **kwargs):
    """One heatmap per head, side by side, from ``(heads, q_len, k_len)`` weights.

    A leading batch dimension of size 1 is dropped. ``titles`` defaults to ``head 1``,
    ``head 2``, ...; other keyword arguments go to :func:`plot_attention`. Returns the figure.
    """
    weights = to_numpy(weights)
    if weights.ndim == 4 and weights.shape[0] == 1:
        weights = weights[0]
    if weights.ndim != 3:
        raise ValueError(f"plot_attention_heads wants (heads, q_len, k_len) weights, got shape {weights.shape}")
    heads = weights.shape[0]
    fig, axes = plt.subplots(1, heads, figsize=(size * heads + 0.5, size), squeeze=False)
    titles = titles or [f"head {i + 1}" for i in range(heads)]
    for head, ax in enumerate(axes[0]):
        plot_attention(
            weights[head], row_labels if head == 0 else None, col_labels, ax=ax, title=titles[head], **kwargs
        )
        if head:
            ax.set_ylabel("")
            ax.set_yticklabels([])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_attention_row(weights, labels=None, ax=None, title=None, highlight=None, ylim=(0.0, 1.0), color="C0"):
    """Bar chart of one query's attention over the keys (one row of an attention matrix).

    Args:
        weights: ``(k_len,)`` weights (they sum to 1 unless the row is fully masked).
        labels: the keys' tick labels.
        ax, title: as in :func:`plot_attention`.
        highlight: index (or indices) of keys drawn in a second colour, e.g. the ones that matter.
        ylim: the y range; the default 0..1 keeps frames of a slider comparable.
        color: the bars' colour.

    Returns:
        The axes.
    """
    weights = to_numpy(weights).reshape(-1)
    ax = _new_ax(ax, (0.55 * len(weights) + 1.5, 2.4))
    colors = [color] * len(weights)
    if highlight is not None:
        for index in np.atleast_1d(highlight):
            colors[int(index)] = "C3"
    ax.bar(range(len(weights)), weights, color=colors)
    ax.set_xticks(range(len(weights)))
    if labels is not None:
        ax.set_xticklabels(labels)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_ylabel("attention weight")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title)
    return ax


def smooth(values, window):
    """Moving average over ``window`` points (``window <= 1`` returns the values unchanged).

    The first points average over what is available so far, so the curve keeps its length.
    """
    values = to_numpy(values).reshape(-1)
    if window <= 1 or len(values) == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


def plot_loss_curves(
    curves,
    ax=None,
    title=None,
    xlabel="training step",
    ylabel="loss",
    window=1,
    logy=False,
    baseline=None,
    baseline_label=None,
):
    """Several training curves on one axes, to compare runs.

    Args:
        curves: ``{label: values}``, each a sequence of losses (or any metric), one per step.
        ax, title: as in :func:`plot_attention`.
        xlabel, ylabel: axis labels.
        window: moving-average window (see :func:`smooth`); the raw curve is drawn faintly behind.
        logy: logarithmic y axis.
        baseline: a horizontal reference line, e.g. the loss of guessing uniformly (``log(classes)``).
        baseline_label: its legend entry.

    Returns:
        The axes.
    """
    ax = _new_ax(ax, (5.0, 3.0))
    for index, (label, values) in enumerate(curves.items()):
        values = to_numpy(values).reshape(-1)
        steps = np.arange(1, len(values) + 1)
        color = f"C{index}"
        if window > 1:
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(steps, smooth(values, window), color=color, label=label)
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", linewidth=1, label=baseline_label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title)
    return ax
