"""rnnlab: recurrent networks with hand-written BPTT (NumPy) and its autograd twin (PyTorch).

``import rnnlab`` never imports torch: the torch backend loads only when asked for.

The package in layers; a module imports only from the layers below it (the import-linter
contracts in pyproject.toml, checked by tests/test_layers.py)::

    7  cli                    one module per command
    6  testing                the spec as a product: rnnlab verify
    5  checkpoint  runs  plot                                     save, load, list, draw
       generate  gradcheck  gradient_reach  tasks                 the backend-neutral pipeline;
   train                                                      tasks: adding, copy
       data  distributed  threads  schedule  runlock              corpora, ranks, threads
    4  backend                the registry: get_backend, check_backend
    3  torch_backend          autograd twin, nn.* fast path, DDP (reuses the spec's optimisers' checks)
       numpy_backend          the executable specification: each backward below its forward
    2  arrays  dropout  memory                                    checks of arrays; masks; the estimate
    1  params                 the parameter contract: names, shapes, init, fuse, torch.nn maps
       config                 ModelConfig
    0  arguments  checks  errors  version                         declared and generic checks
"""

import sys as _sys

from . import gradient_reach
from .backend import Backend, get_backend
from .config import ModelConfig, replace_checked
from .data import (
    Vocab,
    load_corpus,
    load_corpus_time_machine,
    seq_data_iter_random,
    seq_data_iter_sequential,
)
from .errors import RnnlabError
from .generate import predict
from .params import init_params
from .train import TrainConfig, evaluate, train
from .version import __version__  # noqa: F401  (rnnlab.__version__)

__all__ = [
    "Backend", "get_backend", "ModelConfig", "TrainConfig", "replace_checked", "Vocab",
    "load_corpus", "load_corpus_time_machine", "seq_data_iter_random",
    "seq_data_iter_sequential", "RnnlabError", "predict", "init_params", "train", "evaluate",
]

# The gradient-reach module was called rnnlab.inspect, a name that shadows the standard
# library's inside the package; the old import path still works.
inspect = gradient_reach
_sys.modules[__name__ + ".inspect"] = gradient_reach
