"""rnnlab: recurrent networks with hand-written BPTT (NumPy) and its autograd twin (PyTorch).

``import rnnlab`` never imports torch: the torch backend loads only when asked for.
"""

from .backend import Backend, get_backend
from .config import ModelConfig, replace_checked
from .data import Vocab, load_corpus, load_corpus_time_machine, seq_data_iter_random, seq_data_iter_sequential
from .errors import RnnlabError
from .generate import predict
from .params import init_params
from .train import TrainConfig, evaluate, train

__version__ = "0.1.0"

__all__ = [
    "Backend", "get_backend", "ModelConfig", "TrainConfig", "replace_checked", "Vocab",
    "load_corpus", "load_corpus_time_machine", "seq_data_iter_random",
    "seq_data_iter_sequential", "RnnlabError", "predict", "init_params", "train", "evaluate",
]
