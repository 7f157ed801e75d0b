"""Converting PyTorch's own modules into tinyformer's layout, so that both compute the same numbers.

Tests, chapters and labs copy the weights of ``nn.MultiheadAttention`` and
``nn.TransformerEncoderLayer`` / ``DecoderLayer`` into ours and compare outputs.
"""

import torch


def copy_mha_weights(mine, reference):
    """Copy an ``nn.MultiheadAttention``'s weights into a module with ``w_q, w_k, w_v, w_o``.

    PyTorch packs the three input projections into ``in_proj_weight`` (3D x D), in the order
    q, k, v; its output projection is ``out_proj``.
    """
    d_model = reference.embed_dim
    with torch.no_grad():
        for i, projection in enumerate((mine.w_q, mine.w_k, mine.w_v)):
            projection.weight.copy_(reference.in_proj_weight[i * d_model : (i + 1) * d_model])
            if projection.bias is not None:
                projection.bias.copy_(reference.in_proj_bias[i * d_model : (i + 1) * d_model])
        mine.w_o.weight.copy_(reference.out_proj.weight)
        if mine.w_o.bias is not None:
            mine.w_o.bias.copy_(reference.out_proj.bias)
    return mine


def copy_layer_weights(mine, reference):
    """Copy an ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer`` into ours.

    Attention goes through :func:`copy_mha_weights` (PyTorch calls cross-attention
    ``multihead_attn``); the feed-forward network and the norms are copied by name.
    """
    copy_mha_weights(mine.self_attn, reference.self_attn)
    if hasattr(reference, "multihead_attn"):
        copy_mha_weights(mine.cross_attn, reference.multihead_attn)
    mine.feed_forward.linear1.load_state_dict(reference.linear1.state_dict())
    mine.feed_forward.linear2.load_state_dict(reference.linear2.state_dict())
    for name in ("norm1", "norm2", "norm3"):
        if hasattr(reference, name):
            getattr(mine, name).load_state_dict(getattr(reference, name).state_dict())
    return mine


def randomise_norms(*layers):
    """Give every LayerNorm random weights and biases, so that a swapped norm1/norm2 shows.

    LayerNorms start at weight 1 and bias 0, where mixing them up changes nothing.
    """
    with torch.no_grad():
        for layer in layers:
            for module in layer.modules():
                if isinstance(module, torch.nn.LayerNorm):
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.normal_()
    return layers[0] if len(layers) == 1 else layers
