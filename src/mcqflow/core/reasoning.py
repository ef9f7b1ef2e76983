"""The six-tag reasoning chain: <question><think><reasoning><reflection><adjustment><output>.

A chain is six sibling elements in this order. Parsing goes through lxml with a hardened parser
(no entity resolution, no network, no huge trees) so LLM-written text can never expand an entity bomb.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from mcqflow.core.text import letter_of

TAGS = ("question", "think", "reasoning", "reflection", "adjustment", "output")

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, dtd_validation=False
)
_STEP = re.compile(r"step\s*(\d+)\s*[:：]", re.IGNORECASE)


def build_chain(
    question: str, think: str, steps: list[str], reflection: str, adjustment: str, output: str
) -> str:
    """Write a chain; `steps` become "step 1: …" lines inside <reasoning>."""
    reasoning = "\n".join(f"step {i}: {s}" for i, s in enumerate(steps, 1))
    parts = dict(
        question=question,
        think=think,
        reasoning=reasoning,
        reflection=reflection,
        adjustment=adjustment,
        output=output,
    )
    return "\n".join(f"<{t}>{_escape(parts[t])}</{t}>" for t in TAGS)


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class ParsedChain:
    elements: list[tuple[str, str]]  # (tag, text) in document order, top level only

    def texts(self, tag: str) -> list[str]:
        return [t for name, t in self.elements if name == tag]

    @property
    def tags(self) -> list[str]:
        return [name for name, _ in self.elements]

    def output_letter(self) -> str | None:
        """The letter of a chain with exactly one <output> that holds one (mcqflow.core.text.letter_of); None
        otherwise."""
        outputs = self.texts("output")
        return letter_of(outputs[0]) if len(outputs) == 1 else None

    def steps(self) -> list[int]:
        return [int(m.group(1)) for r in self.texts("reasoning") for m in _STEP.finditer(r)]


class ChainError(ValueError):
    pass


def parse_chain(text: str) -> ParsedChain:
    """Parse a chain's top-level elements. Raises ChainError for text that is not well-formed XML."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ChainError("DTD/entity declarations are not allowed in a reasoning chain")
    try:
        root = etree.fromstring(f"<chain>{text}</chain>".encode(), _PARSER)
    except etree.XMLSyntaxError as e:
        raise ChainError(f"malformed XML: {e}") from None
    return ParsedChain([(el.tag, "".join(el.itertext()).strip()) for el in root if isinstance(el.tag, str)])
