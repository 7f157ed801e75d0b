"""What every notebook does first: seed everything, run on the CPU."""

import random

import numpy as np
import torch


def seed_everything(seed=0):
    """Seed ``random``, ``numpy`` and ``torch`` so that every run prints the same numbers."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed
