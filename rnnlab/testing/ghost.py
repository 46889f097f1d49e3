"""Ghost units: a subject's unit rebuilt in rnnlab's process from the data the child sends
(isolation.py), whose calls into the subject are requests to the child, and whose every
answer is checked field by field before the properties see it."""

from __future__ import annotations

import numpy as np

from ..errors import SubjectError
from .adapters import SubjectEnded, SubjectRaised, Unit
from .compare import Misfit, Quantity


def _observation(obs) -> bool:
    """{name: float64 array or Misfit}: what a unit's observe returns."""
    return isinstance(obs, dict) and all(
        isinstance(k, str) and (_misfit(v) or (isinstance(v, np.ndarray) and v.dtype == np.float64))
        for k, v in obs.items())


def _misfit(v) -> bool:
    return (isinstance(v, Misfit) and isinstance(v.message, str) and isinstance(v.layout, str)
            and (v.value is None or (isinstance(v.value, np.ndarray) and v.value.dtype == np.float64)))


def _mutations(m) -> bool:
    return isinstance(m, list) and all(isinstance(x, tuple) and len(x) == 2
                                       and all(isinstance(s, str) for s in x) for x in m)


def _fd_arrays(a) -> bool:
    return a is None or (isinstance(a, dict) and all(
        isinstance(k, str) and isinstance(v, tuple) and len(v) == 2
        and isinstance(v[0], np.ndarray) and isinstance(v[1], Quantity) for k, v in a.items()))


def _losses(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, tuple) and len(x) == 2
                                       and all(isinstance(f, float) for f in x) for x in v)


ANSWERS = {  # the answer each request expects: (kind, check of each field after the kind)
    "observe": ("obs", (_observation, _mutations)),
    "observe_many": ("obs", (lambda v: isinstance(v, list) and all(map(_observation, v)), _mutations)),
    "observe_chain": ("obs", (lambda v: isinstance(v, list) and all(map(_observation, v)), _mutations)),
    "fd_setup": ("fd", (_fd_arrays,)),
    "fd_loss": ("loss", (lambda v: isinstance(v, float),)),
    "fd_many": ("losses", (_losses,)),
}


def ghost(cls, state: dict, index: int, child) -> Unit:
    """The unit's class with its data and without the subject: observe, observe_many,
    observe_chain and fd_setup ask ``child`` (an ``isolation.Child``: ``request(msg)``,
    ``stop(reason)``), as instance attributes, found before the class's methods."""
    if not (isinstance(cls, type) and issubclass(cls, Unit) and isinstance(state, dict)):
        raise SubjectEnded("the process running your code sent back something that is not a unit")
    ghost = object.__new__(cls)
    ghost.__dict__.update(state)
    ghost.mutated = []

    def ask(*msg):
        """The child's answer to ``msg``, its fields checked: what the subject raised is a
        SubjectRaised, a usage problem a SubjectError, anything malformed ends the child."""
        reply = child.request((msg[0], index, *msg[1:]))
        kind = reply[0]
        if kind == "raised" and len(reply) == 3 and isinstance(reply[1], str) and _mutations(reply[2]):
            ghost.mutated.extend(reply[2])
            raise SubjectRaised(reply[1])
        if kind == "error" and len(reply) == 2 and isinstance(reply[1], str):
            raise SubjectError(reply[1])
        want, checks = ANSWERS[msg[0]]
        if kind != want or len(reply) != 1 + len(checks) or not all(
                check(v) for check, v in zip(checks, reply[1:])):
            child.stop("the process running your code sent back what rnnlab does not read")
        return reply[1:]

    def observe(p, grads):
        obs, mutated = ask("observe", p, grads)
        ghost.mutated.extend(mutated)
        return obs

    def observe_many(problems, grads):
        many, mutated = ask("observe_many", problems, grads)
        ghost.mutated.extend(mutated)
        return many

    def observe_chain(p, bounds, grads):
        parts, mutated = ask("observe_chain", p, bounds, grads)
        ghost.mutated.extend(mutated)
        return parts

    def fd_setup(p):
        (arrays,) = ask("fd_setup", p)
        if arrays is None:
            return None

        def loss() -> float:
            (value,) = ask("fd_loss", {k: a for k, (a, _) in arrays.items()})
            return value

        def many(deltas: list) -> list:
            """Every perturbed loss of finite differences in one request."""
            (values,) = ask("fd_many", deltas)
            return values
        loss.many = many
        return arrays, loss

    ghost.observe, ghost.fd_setup = observe, fd_setup
    ghost.observe_many, ghost.observe_chain = observe_many, observe_chain
    return ghost
