"""A char-level vanilla RNN in the style of Karpathy's min-char-rnn (my rewrite: dict grads), with one mistake:
loss reads the probability of the INPUT char (ix) instead of the target; gradient still uses targets."""
import numpy as np

vocab_size, hidden_size = 27, 64
rng = np.random.default_rng(1)
Wxh = rng.standard_normal((hidden_size, vocab_size)) * 0.01
Whh = rng.standard_normal((hidden_size, hidden_size)) * 0.01
Why = rng.standard_normal((vocab_size, hidden_size)) * 0.01
bh = np.zeros((hidden_size, 1))
by = np.zeros((vocab_size, 1))


def onehot(ix):
    v = np.zeros((vocab_size, 1))
    v[ix, 0] = 1.0
    return v


def lossFun(inputs, targets, hprev):
    xs, hs, probs = {}, {-1: hprev.copy()}, {}
    loss = 0.0
    for t, (ix, tgt) in enumerate(zip(inputs, targets)):
        xs[t] = onehot(ix)
        hs[t] = np.tanh(Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
        logits = Why @ hs[t] + by
        logits = logits - logits.max()
        probs[t] = np.exp(logits) / np.exp(logits).sum()
        loss -= np.log(probs[t][ix, 0])
    grads = {name: np.zeros_like(W) for name, W in
             (("Wxh", Wxh), ("Whh", Whh), ("Why", Why), ("bh", bh), ("by", by))}
    dh_next = np.zeros_like(hprev)
    for t in reversed(range(len(inputs))):
        dlogits = probs[t].copy()
        dlogits[targets[t]] -= 1.0
        grads["Why"] += dlogits @ hs[t].T
        grads["by"] += dlogits
        dh = Why.T @ dlogits + dh_next
        dpre = (1.0 - hs[t] ** 2) * dh
        grads["bh"] += dpre
        grads["Wxh"] += dpre @ xs[t].T
        grads["Whh"] += dpre @ hs[t - 1].T
        dh_next = Whh.T @ dpre
    for g in grads.values():
        np.clip(g, -5, 5, out=g)
    return (loss, grads["Wxh"], grads["Whh"], grads["Why"], grads["bh"], grads["by"],
            hs[len(inputs) - 1])


if __name__ == "__main__":
    data = open("input.txt").read()
    print(len(data))
