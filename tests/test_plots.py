"""coursekit.plots draws what it is given: the heatmap holds the weights, labels land on the axes."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from coursekit import plots


def test_plot_attention_draws_the_weights_with_labels_and_annotations():
    weights = torch.softmax(torch.randn(1, 3, 4), dim=-1)  # a leading size-1 dim is squeezed
    ax = plots.plot_attention(weights, ["a", "b", "c"], ["w", "x", "y", "z"], title="t")
    np.testing.assert_allclose(ax.images[0].get_array(), weights[0].numpy(), rtol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w", "x", "y", "z"]
    assert len(ax.texts) == 12 and ax.get_title() == "t"
    plt.close("all")


def test_plot_attention_rejects_several_matrices_with_a_hint():
    with pytest.raises(ValueError, match=r"weights\[0, head\]"):
        plots.plot_attention(torch.rand(2, 2, 3, 3))


def test_plot_attention_heads_one_panel_per_head():
    fig = plots.plot_attention_heads(torch.rand(1, 3, 2, 2))
    assert [ax.get_title() for ax in fig.axes] == ["head 1", "head 2", "head 3"]
    plt.close("all")


def test_smooth_is_a_running_mean_that_keeps_length():
    np.testing.assert_allclose(plots.smooth([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(plots.smooth([1, 2, 3], 1), [1, 2, 3])
