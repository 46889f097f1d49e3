"""d2l 2nd edition scratch cells, written with a parameter helper and setattr loops, with one mistake:
LSTMScratch: returns (H, C_tilde) as the final state instead of (H, C)."""
import torch
from torch import nn


def _param(*shape, sigma=0.01):
    return nn.Parameter(torch.randn(*shape) * sigma)


class RNNScratch(nn.Module):
    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.num_inputs, self.num_hiddens = num_inputs, num_hiddens
        self.W_xh = _param(num_inputs, num_hiddens, sigma=sigma)
        self.W_hh = _param(num_hiddens, num_hiddens, sigma=sigma)
        self.b_h = nn.Parameter(torch.zeros(num_hiddens))

    def forward(self, inputs, state=None):
        if state is None:
            H = inputs.new_zeros((inputs.shape[1], self.num_hiddens))
        else:
            (H,) = state
        outputs = []
        for X in inputs:
            H = torch.tanh(X @ self.W_xh + H @ self.W_hh + self.b_h)
            outputs.append(H)
        return outputs, H


class LSTMScratch(nn.Module):
    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.num_inputs, self.num_hiddens = num_inputs, num_hiddens
        for g in "ifoc":
            setattr(self, f"W_x{g}", _param(num_inputs, num_hiddens, sigma=sigma))
            setattr(self, f"W_h{g}", _param(num_hiddens, num_hiddens, sigma=sigma))
            setattr(self, f"b_{g}", nn.Parameter(torch.zeros(num_hiddens)))

    def _gate(self, g, X, H):
        return X @ getattr(self, f"W_x{g}") + H @ getattr(self, f"W_h{g}") + getattr(self, f"b_{g}")

    def forward(self, inputs, H_C=None):
        batch = inputs.shape[1]
        if H_C is None:
            H = torch.zeros(batch, self.num_hiddens, dtype=inputs.dtype)
            C = torch.zeros(batch, self.num_hiddens, dtype=inputs.dtype)
        else:
            H, C = H_C
        outputs = []
        for X in inputs:
            I = torch.sigmoid(self._gate("i", X, H))
            F = torch.sigmoid(self._gate("f", X, H))
            O = torch.sigmoid(self._gate("o", X, H))
            C_tilde = torch.tanh(self._gate("c", X, H))
            C = F * C + I * C_tilde
            H = O * torch.tanh(C)
            outputs.append(H)
        return outputs, (H, C_tilde)


class GRUScratch(nn.Module):
    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.num_inputs, self.num_hiddens = num_inputs, num_hiddens
        for g in "zrh":
            setattr(self, f"W_x{g}", _param(num_inputs, num_hiddens, sigma=sigma))
            setattr(self, f"W_h{g}", _param(num_hiddens, num_hiddens, sigma=sigma))
            setattr(self, f"b_{g}", nn.Parameter(torch.zeros(num_hiddens)))

    def forward(self, inputs, H=None):
        if H is None:
            H = torch.zeros(inputs.shape[1], self.num_hiddens, dtype=inputs.dtype)
        outputs = []
        for X in inputs:
            Z = torch.sigmoid(X @ self.W_xz + H @ self.W_hz + self.b_z)
            R = torch.sigmoid(X @ self.W_xr + H @ self.W_hr + self.b_r)
            H_tilde = torch.tanh(X @ self.W_xh + (R * H) @ self.W_hh + self.b_h)
            H = Z * H + (1 - Z) * H_tilde
            outputs.append(H)
        return outputs, H
