"""Answers to lab 1 (attention from scratch): see tests/catalogue/__init__.py for the format."""
from tests.catalogue import Answer

ANSWERS = [
    Answer("softmax", "no max subtraction", replace=[("exps = (x - safe_max).exp()", "exps = x.exp()")],
           hint=("maximum",)),
    Answer("softmax", "logsumexp style", code='''
def softmax(x, dim=-1):
    m = x.amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(x - m)
    s = e.sum(dim=dim, keepdim=True)
    return torch.where(s > 0, e / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(e))
''', correct=True),
]
