"""Every generative model family, by name: one line per family.

A new model is one file that defines its ``FAMILY`` (a :class:`~models.generative.family.Family`
with its capabilities) and one line here. Everything else (training, evaluation, AIS scoring,
the ``infer train`` and ``infer evaluate`` commands) finds it through :func:`get`.
"""

from __future__ import annotations

from models.generative import aae, gan, nade, vae
from models.generative.family import CAPABILITIES, Family

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        vae.FAMILY,
        gan.FAMILY,
        nade.FAMILY,
        aae.FAMILY,
    )
}
"""The families in the order the command line lists them."""


def names() -> list[str]:
    """Names of the registered families."""
    return list(FAMILIES)


def get(name: str) -> Family:
    """The family called ``name``.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(FAMILIES)}.")
    return FAMILIES[name]


def having(capability: str) -> list[str]:
    """Names of the families with ``capability`` (one of ``family.CAPABILITIES``)."""
    if capability not in CAPABILITIES:
        raise ValueError(
            f"unknown capability {capability!r}; choose one of: {', '.join(CAPABILITIES)}."
        )
    return [name for name, family in FAMILIES.items() if capability in family.capabilities]


def describe(capability: str) -> str:
    """The capability, what it means and which families have it, for error messages about a
    family that lacks it: "the capability 'x' (what it is), which a, b have"."""
    owners = having(capability)
    verb = "has" if len(owners) == 1 else "have"
    which = f"which {', '.join(owners)} {verb}" if owners else "which no registered family has"
    return f"the capability {capability!r} ({CAPABILITIES[capability]}), {which}"
