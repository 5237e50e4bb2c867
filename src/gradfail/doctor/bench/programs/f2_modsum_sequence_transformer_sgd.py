"""Next-token prediction on 'additive' sequences (x[t] = x[t-1] + x[t-2] mod 16) with a causal
Transformer: nn.Embedding + learned positions, one nn.TransformerEncoderLayer (d=48, 4 heads,
LayerNorm) with a causal mask, and a LayerNorm + Linear head over the 16 tokens.
Training: SGD momentum 0.9, lr 0.1 with a 50-step linear warm-up (LambdaLR), nn.CrossEntropyLoss
over every predictable position, fresh batches of 64 sequences each step.
Cause of failure: the head ends in nn.Softmax, so CrossEntropyLoss (which does its own
log-softmax) is fed probabilities instead of logits; the gradients reaching the scores are
squashed by the extra softmax and training crawls at low next-token accuracy.
FIXED=1 removes the final nn.Softmax so the loss receives logits.
"""
import os
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(6)
np.random.seed(6)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

V, L = 16, 12


def make_batch(n):
    s = torch.zeros(n, L, dtype=torch.long)
    s[:, :2] = torch.randint(0, V, (n, 2))
    for t in range(2, L):
        s[:, t] = (s[:, t - 1] + s[:, t - 2]) % V
    return s


class CausalLM(nn.Module):
    def __init__(self, d=48):
        super().__init__()
        self.tok = nn.Embedding(V, d)
        self.pos = nn.Parameter(0.1 * torch.randn(L, d))
        layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=96, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1)
        head = [nn.LayerNorm(d), nn.Linear(d, V)]
        if not FIXED:
            head.append(nn.Softmax(dim=-1))
        self.head = nn.Sequential(*head)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(L))

    def forward(self, x):
        h = self.encoder(self.tok(x) + self.pos, mask=self.mask, is_causal=True)
        return self.head(h)


model = CausalLM()
criterion = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50))


def lm_loss(out, x):
    # position t predicts token t+1; the first token cannot be predicted from one token
    return criterion(out[:, 1:-1].reshape(-1, V), x[:, 2:].reshape(-1))


losses = []
n_steps = 600
for step in range(n_steps):
    x = make_batch(64)
    loss = lm_loss(model(x), x)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    if step % 150 == 0:
        print(f"step {step} loss={np.mean(losses[-150:]):.4f}")

test = make_batch(500)
if PROBE:
    # gradient reaching the class scores (the Linear output), relative to the gradient
    # cross-entropy on those scores would give: (softmax(z) - onehot) / n
    cache = {}
    hook = model.head[1].register_forward_hook(lambda m, i, o: cache.update(z=o))
    out = model(test)
    z = cache["z"]
    z.retain_grad()
    lm_loss(out, test).backward()
    hook.remove()
    zs = z[:, 1:-1].reshape(-1, V).detach()
    onehot = nn.functional.one_hot(test[:, 2:].reshape(-1), V).float()
    ref = (torch.softmax(zs, -1) - onehot) / zs.shape[0]
    ratio = z.grad[:, 1:-1].reshape(-1, V).norm().item() / ref.norm().item()
    print(f"PROBE score_grad_over_logit_ce_grad={ratio:.3g}")

with torch.no_grad():
    acc = (model(test)[:, 1:-1].argmax(-1) == test[:, 2:]).float().mean().item()
tail = max(1, n_steps // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} next_token_acc={acc:.3f}")
