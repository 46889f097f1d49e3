"""rnnlab: recurrent networks with hand-written BPTT (NumPy) and its autograd twin (PyTorch)."""
__version__ = "0.1.0"
