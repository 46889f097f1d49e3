"""rnnlab's specification as a product: hold anyone's RNN, LSTM or GRU code to it.

    from rnnlab.testing import assert_conforms
    assert_conforms("rnn_layers.py", convention="cs231n")          # CS231n assignment 3
    assert_conforms(lstm, convention="d2l")                         # d2l's lstm(inputs, state, params)
    assert_conforms(MyLSTM, convention="torch.nn")                  # an nn.Module class
    assert_conforms("min-char-rnn.py", convention="min-char-rnn")   # Karpathy's lossFun

One pipeline, one module per part (docs/verify.md):

    subject -> convention adapter -> properties (Hypothesis) -> report + diagnosis
               conventions.py         properties.py              report.py
               adapters.py (base)     strategies.py              diagnosis.py, mistakes.py
               cs231n_units.py        spec.py (the reference     (mistake_entry.py: one
                                      the properties compare      entry; mistake_families.py:
                                      with; rules.py: its rules)  one per gate or pair)
               d2l_units.py
               torch_units.py     (torchnn_base.py: the torch.nn convention without torch;
                                   torch_gates.py: one nn.Linear per gate; module_args.py:
                                   FILE:NAME(key=value), a class's other constructor arguments)
               torch_tutorial.py  (tutorial_base.py: PyTorch's char-RNN tutorial module)
               minchar_units.py
               protocol_units.py
               loader.py (the registry of conventions; finds a file's when none is given)
               skeleton.py (a Protocol to edit, for a file that fits none)

A subject given as a file runs in a child process (isolation.py and ghost.py here,
child.py there): each call into it has a time limit, the child a memory cap; the
properties, the spec and the report stay in this process.

Needs Hypothesis (``pip install hypothesis``, or ``pip install ".[verify]"`` in a clone of
rnnlab); torch only for torch subjects.
"""

from __future__ import annotations

from .conventions import Block, fused, single
from .mistakes import CATALOGUE, Mistake
from .protocol_units import Protocol
from .report import Report
from .runner import DEFAULT_MAX_EXAMPLES, Progress, assert_conforms, verify
from .rules import SPEC, Rules
from .spec import run as run_spec
from .strategies import (
    Constraints,
    Example,
    Problem,
    examples,
    make_problem,
    problems,
    sizes,
)

__all__ = [
    "assert_conforms", "verify", "Report", "Protocol", "Block", "fused", "single",
    "CATALOGUE", "Mistake", "SPEC", "Rules", "run_spec", "Constraints", "Example", "Problem",
    "examples", "problems", "make_problem", "sizes", "Progress", "DEFAULT_MAX_EXAMPLES",
]
