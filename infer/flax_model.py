"""What a :meth:`infer.Target.from_flax` target knows of its module, ``target.notes["flax"]``:
named draws back to the parameter pytree, and the module at one parameter pytree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from infer.base import key_name


class FlaxModel:
    """What a :meth:`infer.Target.from_flax` target knows of its module
    (``target.notes["flax"]``): draws back to parameter pytrees and modules.

    Attributes:
        graphdef: the module's ``nnx.GraphDef``.
        names: the draw names, one per parameter array (``"hidden.kernel"``), in the order
            of the parameter pytree's leaves.
        position_kind: ``"tree"`` or ``"flat"``.
        num_params: the number of scalar parameters.
    """

    def __init__(
        self, graphdef, state_def, pure_def, rest, names, unravel, num_params, shapes=None
    ):
        self.graphdef = graphdef
        self.state_def = state_def
        self.pure_def = pure_def
        self.rest = rest
        self.names = names
        self.unravel = unravel
        self.position_kind = "tree" if unravel is None else "flat"
        self.shapes = shapes  # each parameter's shape, in the order of names
        self.num_params = num_params

    def params(self, draws: dict) -> dict:
        """The parameter pytree (a nested dict, as ``nnx.to_pure_dict`` gives) from named
        draws (``result.draws``, or one draw); leading axes (chains, draws) are kept."""
        if not isinstance(draws, dict) or any(isinstance(v, dict) for v in draws.values()):
            nested = " of dicts: a parameter pytree already" if isinstance(draws, dict) else ""
            raise TypeError(
                "notes['flax'].params takes the named draws, result.draws ({'hidden.kernel': "
                f"...}}), and gives the nested pytree; got a {type(draws).__name__}{nested}."
            )
        missing = [name for name in self.names if name not in draws]
        if missing:
            raise KeyError(
                f"draws lack the parameter(s) {missing}; expected {list(self.names)} (a run "
                "with keep= keeps only some: the module needs them all)."
            )
        return jax.tree.unflatten(self.pure_def, [draws[name] for name in self.names])

    def module(self, params):
        """The NNX module at one parameter pytree (no leading axes), the fixed state
        restored. Works on traced values (inside ``jit`` or ``vmap``)."""
        return merge(self, self.checked(params, "module"), self.rest)

    def checked(self, params, method: str):
        """``params`` as the module's parameter pytree: laid out as its own (matched by
        parameter name where the container differs, e.g. string keys "0".."11" for a list
        of layers, which leaf order would take in another order, or an ``nnx.State``), one
        draw's shapes."""
        from flax import nnx

        if isinstance(params, nnx.Module):
            raise TypeError(
                f"notes['flax'].{method} takes a parameter pytree and got an nnx.Module: pass "
                "nnx.state(module, nnx.Param) (or its nnx.to_pure_dict)."
            )
        named = {  # an nnx.State's paths pass through each Variable's value: left out
            ".".join(key_name(k) for k in path if not isinstance(k, jax.tree_util.GetAttrKey)): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
        }
        missing = [name for name in self.names if name not in named]
        extra = [name for name in named if name not in self.names]
        if missing or extra:
            raise ValueError(
                f"notes['flax'].{method}: params hold {sorted(extra) or 'no other names'} and "
                f"lack {missing or 'nothing'}; the module's parameters are {list(self.names)}. "
                "Build them with notes['flax'].params(draws)."
            )
        leaves = [named[name] for name in self.names]
        for name, leaf, shape in zip(self.names, leaves, self.shapes or (), strict=False):
            if tuple(np.shape(leaf)) != shape:
                raise ValueError(
                    f"notes['flax'].{method}: {name} has shape {tuple(np.shape(leaf))}, the "
                    f"module's {shape}. It takes one draw: pick one (jax.tree.map(lambda a: "
                    "a[chain, draw], params)), or jax.vmap over the leading axes."
                )
        return jax.tree.unflatten(self.pure_def, leaves)

    def params_at(self, position) -> dict:
        """The parameter pytree at one target position (the identity for ``"tree"``)."""
        return position if self.unravel is None else self.unravel(position)

    def position(self, params):
        """The target's position (a flat vector when ``position="flat"``) at ``params``,
        e.g. to start chains at a point estimate."""
        params = self.checked(params, "position")
        if self.position_kind == "flat":
            return ravel_pytree(params)[0]
        return jax.tree.map(jnp.asarray, params)


def merge(model: FlaxModel, params, rest):
    """``nnx.merge`` of the module at ``params`` (pure dict) with its fixed state ``rest``."""
    from flax import nnx

    state = jax.tree.unflatten(model.state_def, jax.tree.leaves(params))
    return nnx.merge(model.graphdef, state, rest)
