"""min-char-rnn as a student rewrites it: the sizes are V and H, not vocab_size and
hidden_size, and lossFun reads them. Correct: V comes from input.txt, which is not there
when it is checked, so the sizes are read off the lines that make the weights."""
import numpy as np

with open("input.txt") as f:
    text = f.read()
chars = sorted(set(text))
V = len(chars)
H = 100

Wxh = np.random.randn(H, V) * 0.01
Whh = np.random.randn(H, H) * 0.01
Why = np.random.randn(V, H) * 0.01
bh = np.zeros((H, 1))
by = np.zeros((V, 1))


def lossFun(inputs, targets, hprev):
    xs, hs, ps = {}, {-1: np.copy(hprev)}, {}
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((V, 1))
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
        y = Why @ hs[t] + by
        ps[t] = np.exp(y) / np.sum(np.exp(y))
        loss += -np.log(ps[t][targets[t], 0])
    dWxh, dWhh, dWhy = np.zeros((H, V)), np.zeros((H, H)), np.zeros((V, H))
    dbh, dby = np.zeros((H, 1)), np.zeros((V, 1))
    dhnext = np.zeros((H, 1))
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += dy @ hs[t].T
        dby += dy
        dhraw = (1 - hs[t] * hs[t]) * (Why.T @ dy + dhnext)
        dbh += dhraw
        dWxh += dhraw @ xs[t].T
        dWhh += dhraw @ hs[t - 1].T
        dhnext = Whh.T @ dhraw
    for d in (dWxh, dWhh, dWhy, dbh, dby):
        np.clip(d, -5, 5, out=d)
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]
