"""time_major_rnn.py wrapped in an rnnlab.testing.Protocol: edit each TODO, then check it with

    rnnlab verify time_major_rnn_protocol.py --convention protocol

rnnlab calls forward(params, X, state) and backward(params, X, state, dHs, dstate):
params {your name: array} laid out as LAYOUT says, X (T, B, D) time-major, state
(H_0,) for an rnn or gru and (H_0, C_0) for an lstm, each (B, H); dHs (T, B, H) and
dstate are the gradients of the outputs and of the final state (docs/verify.md, 'Wrap
your code in a Protocol').
"""

import numpy as np
import time_major_rnn  # time_major_rnn.py: keep this file beside it

from rnnlab.testing import Protocol, fused

CELL = "rnn"  # TODO: rnn, lstm or gru (read off the names in time_major_rnn.py)

LAYOUT = {  # your weights by your names: which of rnnlab's arrays each stacks, in which order
    "Wx": fused("W_x", "h", CELL),  # TODO: check
    "Wh": fused("W_h", "h", CELL),  # TODO: check
    "b": fused("b_", "h", CELL),  # TODO: check
}


class TimeMajorRnn:
    """time_major_rnn.py's functions behind the calls rnnlab makes."""

    def _forward(self, params, X, state):
        return time_major_rnn.my_rnn_forward(
            X,  # TODO: X is (T, B, D) time-major; X.transpose(1, 0, 2) if yours is (B, T, D)
            state[0],  # H_0 (B, H)
            params["Wx"],
            params["Wh"],
            params["b"],
        )

    def forward(self, params, X, state):
        """-> (Hs (T, B, H) time-major, the final state: (H_T,), or (H_T, C_T) for an lstm)"""
        out = self._forward(params, X, state)
        # my_rnn_forward returns (hs, ?)
        Hs = out[0] if isinstance(out, tuple) else out  # TODO: as (T, B, H), time-major
        return Hs, (Hs[-1],)

    def cache(self, params, X, state):
        out = self._forward(params, X, state)
        return out[-1] if isinstance(out, tuple) else None  # TODO: your cache

    def backward(self, params, X, state, dHs, dstate):
        """-> (grads {name: array, keyed like params}, dX (T, B, D), dstate_0 like state)"""
        out = time_major_rnn.my_rnn_backward(
            np.concatenate([dHs[:-1], dHs[-1:] + dstate[0]]),  # done: H_T's gradient added
            self.cache(params, X, state),  # your forward's cache
        )
        dx, dh0, dWx, dWh, db = out  # what my_rnn_backward returns
        grads = {"Wx": dWx, "Wh": dWh, "b": db}
        dX = dx  # TODO: (T, B, D), time-major
        dstate_0 = (dh0,)
        return grads, dX, dstate_0


_wrapped = TimeMajorRnn()
subject = Protocol(CELL, _wrapped.forward, _wrapped.backward, layout=LAYOUT, name="time_major_rnn")
