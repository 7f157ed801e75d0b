"""tinyformer: a small, readable Transformer in plain PyTorch, one concept a module.

This package is what the course teaches. Course machinery (plots, widgets, grading) lives
in ``coursekit``; tinyformer never imports it.

Conventions used everywhere:

* shapes are batch-first: ``(batch, seq, d_model)``; per-head tensors are
  ``(batch, heads, seq, d_head)``;
* masks are boolean and ``True`` means *may attend*, as in
  ``torch.nn.functional.scaled_dot_product_attention``;
* a query row with no allowed key gets all-zero weights and a zero output, never NaN.
"""

__version__ = "0.1.0"
