"""Train a plain ``torch.nn.LSTM`` (d2l's concise ``RNNModel``), bring its weights into
rnnlab, and generate text with the hand-written NumPy backend.

torch.nn stacks the gates as (i, f, g, o) in ``weight_ih_l0`` (4H, V), uses row-vector
transposes and two biases; ``rnnlab.torch_backend.nn_map.from_nn_module`` maps them
exactly onto rnnlab's d2l names (``W_xi``, ``W_hi``, ``b_i``, ...). The NumPy backend then
gives torch's logits, and so the same greedy continuation.

    python examples/torch_lstm_to_numpy.py [--epochs 40] [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

import rnnlab
from rnnlab.config import ModelConfig
from rnnlab.data import SeqDataLoader
from rnnlab.torch_backend.nn_map import from_nn_module
from rnnlab.train import epoch_rng


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--quick", action="store_true", help="a few seconds: tiny model and corpus")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.hidden = 2, 16
    torch.manual_seed(0)
    corpus, vocab = rnnlab.load_corpus("timemachine", 2000 if args.quick else 10_000)
    V, H = len(vocab), args.hidden

    # d2l's concise model: nn.LSTM on one-hot inputs, then a Linear layer
    lstm, linear = nn.LSTM(V, H), nn.Linear(H, V)
    opt = torch.optim.Adam(list(lstm.parameters()) + list(linear.parameters()), lr=0.01)
    loader = SeqDataLoader(corpus, 32 if not args.quick else 8, 35, use_random_iter=False)
    for epoch in range(args.epochs):
        state = None
        for X, Y in loader.epoch(epoch_rng(0, epoch)):
            inputs = nn.functional.one_hot(torch.from_numpy(X).T, V).float()  # (T, B, V)
            out, state = lstm(inputs, state)
            state = tuple(s.detach() for s in state)  # truncated BPTT
            loss = nn.functional.cross_entropy(linear(out.reshape(-1, H)),
                                               torch.from_numpy(Y).T.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(list(lstm.parameters()) + list(linear.parameters()), 1.0)
            opt.step()
        if epoch % 10 == 9 or epoch == args.epochs - 1:
            print(f"torch.nn.LSTM epoch {epoch + 1}: perplexity {float(loss.detach().exp()):.2f}")

    cfg = ModelConfig("lstm", V, H)
    params = from_nn_module(cfg, lstm, linear)  # NumPy arrays with rnnlab's names
    be = rnnlab.get_backend("numpy")
    text = rnnlab.predict("time traveller", 50, be, cfg, be.from_numpy(params), vocab)

    # logits on a batch of real text: torch.nn's own forward vs the NumPy backend
    X = corpus[:4 * 35].reshape(4, 35)  # (B, T)
    logits, _ = be.forward(cfg, be.from_numpy(params), X, be.begin_state(cfg, 4))
    with torch.no_grad():
        out, _ = lstm(nn.functional.one_hot(torch.from_numpy(X).T, V).float())  # (T, B, H)
        ref = linear(out.reshape(-1, H)).numpy()  # (T*B, V), time-major like rnnlab's
    err = float(np.abs(logits - ref).max() / np.abs(ref).max())
    print(f"logits: numpy backend vs torch.nn, max relative difference {err:.1e}")

    # the same continuation from torch.nn itself
    with torch.no_grad():
        ids, state = [vocab[c] for c in "time traveller"], None
        out, state = lstm(nn.functional.one_hot(torch.tensor([ids[:-1]]).T, V).float())
        for _ in range(50):
            out, state = lstm(nn.functional.one_hot(torch.tensor([[ids[-1]]]), V).float(), state)
            ids.append(int(linear(out[-1]).argmax()))
    torch_text = "".join(vocab.to_tokens(ids))
    print("numpy backend :", text)
    print("torch.nn.LSTM :", torch_text)
    same = text == torch_text and err < 1e-5  # float32 round-off
    print("identical continuations" if text == torch_text else "continuations DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
