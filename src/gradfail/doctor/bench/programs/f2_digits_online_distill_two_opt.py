"""Online distillation on 8x8 digits: a wide teacher MLP and a small student MLP trained together.

Teacher: 64-256-256-10 ReLU MLP with dropout, SGD + Nesterov momentum (lr 0.05).
Student: 64-32-10 GELU MLP, Adam (lr 2e-3), trained on cross-entropy plus a temperature-3 KL
term towards the (detached) teacher; mini-batches of 64; the student is the deliverable.
Cause of failure: the loop clears the teacher's gradients (teacher_opt.zero_grad()) but never
the student's, so the student's .grad is the sum of all its past gradients and its updates keep
following that stale, growing sum: its loss falls at first and then rises and swings.
FIXED=1 also calls student_opt.zero_grad() every step.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(5)
np.random.seed(5)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = torch.tensor(d.target)
perm = torch.randperm(len(X))
tr, te = perm[:1400], perm[1400:]

teacher = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2),
                        nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
student = nn.Sequential(nn.Linear(64, 32), nn.GELU(), nn.Linear(32, 10))
teacher_opt = torch.optim.SGD(teacher.parameters(), lr=0.05, momentum=0.9, nesterov=True)
student_opt = torch.optim.Adam(student.parameters(), lr=2e-3)
T = 3.0

losses, grad_norms = [], []
n_steps = 1000
for step in range(n_steps):
    idx = tr[torch.randint(0, len(tr), (64,))]
    xb, yb = X[idx], y[idx]
    t_logits = teacher(xb)
    s_logits = student(xb)
    t_loss = F.cross_entropy(t_logits, yb)
    kd = F.kl_div(F.log_softmax(s_logits / T, 1), F.softmax(t_logits.detach() / T, 1),
                  reduction="batchmean") * T * T
    s_loss = 0.5 * F.cross_entropy(s_logits, yb) + 0.5 * kd
    teacher_opt.zero_grad()
    if FIXED:
        student_opt.zero_grad()
    (t_loss + s_loss).backward()
    if PROBE:
        grad_norms.append(torch.cat([p.grad.flatten() for p in student.parameters()]).norm().item())
    teacher_opt.step()
    student_opt.step()
    losses.append(s_loss.item())
    if step % 200 == 0:
        print(f"step {step} student_loss={np.mean(losses[-200:]):.4f} teacher_loss={t_loss.item():.4f}")

if PROBE:
    # student's .grad norm at the end of training relative to its first steps
    ratio = np.mean(grad_norms[-50:]) / np.mean(grad_norms[:50])
    print(f"PROBE student_grad_norm_late_over_early={ratio:.3g}")

teacher.eval()
with torch.no_grad():
    acc = (student(X[te]).argmax(1) == y[te]).float().mean().item()
tail = max(1, n_steps // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={acc:.3f}")
