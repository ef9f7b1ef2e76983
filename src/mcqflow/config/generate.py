"""params.yaml `generate:`: the LLM-written questions over the topic x difficulty x type grid, and chains."""

from __future__ import annotations

from dataclasses import dataclass, field

from mcqflow.config.schema import build, choose

TOPICS = [
    "科技倫理",
    "經濟發展",
    "環境保護",
    "教育體系",
    "網絡安全",
    "法律制度",
    "人權議題",
    "政治治理",
    "言論自由",
    "宗教文化",
    "民族關係",
    "地區自治",
    "國際關係",
    "社會問題",
    "歷史事件",
]
DIFFICULTIES = ["基礎", "中級", "高級"]
QTYPES = ["事實性", "概念性", "分析性", "比較性", "評估性"]


@dataclass
class GenerateParams:
    """params.yaml `generate:`."""

    per_cell: int = 0  # new questions per (topic, difficulty, qtype) cell; 3 gives 675
    chains_for_missing: bool = True  # write chains for train questions that have none
    # train questions that come with a human analysis (GAOKAO): convert it (offline, deterministic) or
    # give it and the gold letter to the LLM teacher (llm:) to write the chain from
    analysis_chains: str = "convert"  # convert | llm
    topics: list = field(default_factory=lambda: list(TOPICS))
    difficulties: list = field(default_factory=lambda: list(DIFFICULTIES))
    qtypes: list = field(default_factory=lambda: list(QTYPES))

    @classmethod
    def from_params(cls, d: dict) -> GenerateParams:
        p = build(cls, d, "generate")
        choose(p.analysis_chains, ("convert", "llm"), "generate.analysis_chains")
        return p
