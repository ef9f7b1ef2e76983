"""params.yaml `translate:`: the zh -> en stage."""

from __future__ import annotations

from dataclasses import dataclass

from mcqflow.config.schema import build, choose

OPENCC_MODES = ("keep", "t2s", "s2t")


@dataclass
class TranslateParams:
    """params.yaml `translate:`."""

    opencc: str = "keep"  # script of the Chinese source before it is sent: keep | t2s | s2t
    reference: bool = True  # use existing English rows (same id and gold letter) instead of the LLM
    # a dataset with no English rows at all (GAOKAO): skip the en branch, or translate it all through llm:
    without_reference: str = "skip"  # skip | llm

    @classmethod
    def from_params(cls, d: dict) -> TranslateParams:
        p = build(cls, d, "translate")
        choose(p.opencc, OPENCC_MODES, "translate.opencc")
        choose(p.without_reference, ("skip", "llm"), "translate.without_reference")
        return p
