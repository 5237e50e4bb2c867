"""Topic classification of synthetic variable-length token documents
(vocabulary 400, 5 topics; each topic over-uses its own 40 keywords among
generic filler tokens). Model: nn.EmbeddingBag (mean over the bag, offsets
format) followed by a linear classifier. SGD lr 0.5, momentum 0.9,
weight decay 1e-4, mini-batches of 32 documents, CrossEntropyLoss.
Healthy: reaches high held-out accuracy; FIXED=1 changes nothing.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(17)
np.random.seed(17)
rng = np.random.default_rng(17)

VOCAB, TOPICS, KEYWORDS = 400, 5, 40
keyword_sets = rng.permutation(VOCAB)[:TOPICS * KEYWORDS].reshape(TOPICS, KEYWORDS)


def make_docs(n):
    docs, labels = [], []
    for _ in range(n):
        topic = rng.integers(TOPICS)
        length = rng.integers(8, 31)
        is_kw = rng.random(length) < 0.3
        toks = np.where(is_kw, rng.choice(keyword_sets[topic], length),
                        rng.integers(0, VOCAB, length))
        docs.append(torch.from_numpy(toks))
        labels.append(topic)
    return docs, torch.tensor(labels)


def collate(docs):
    offsets = torch.tensor([0] + [len(d) for d in docs[:-1]]).cumsum(0)
    return torch.cat(docs), offsets


class BagOfWords(nn.Module):
    def __init__(self, dim=32):
        super().__init__()
        self.bag = nn.EmbeddingBag(VOCAB, dim, mode="mean")
        self.fc = nn.Linear(dim, TOPICS)

    def forward(self, tokens, offsets):
        return self.fc(self.bag(tokens, offsets))


train_docs, train_y = make_docs(3000)
test_docs, test_y = make_docs(1000)
model = BagOfWords()
opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)

losses = []
BS = 32
for epoch in range(6):
    perm = torch.randperm(len(train_docs)).tolist()
    for i in range(0, len(perm) - BS + 1, BS):
        ids = perm[i:i + BS]
        tokens, offsets = collate([train_docs[j] for j in ids])
        loss = F.cross_entropy(model(tokens, offsets), train_y[ids])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"epoch {epoch + 1} loss {np.mean(losses[-93:]):.4f}")

with torch.no_grad():
    tokens, offsets = collate(test_docs)
    test_acc = (model(tokens, offsets).argmax(1) == test_y).float().mean().item()
if os.environ.get("PROBE") == "1":
    print(f"PROBE test_acc_over_chance={test_acc * TOPICS:.2f}")
tail = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_acc={test_acc:.3f}")
