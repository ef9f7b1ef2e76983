"""GAOKAO-Bench as a second dataset: inline options, split by year, leakage, analyses as chains, en skipped."""

import json
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from llm_server import FakeLLM
from mcqflow.core.errors import UserError
from mcqflow.core.reasoning import parse_chain
from mcqflow.core.schema import Record, read_records
from mcqflow.data.datasets import load_dataset, split_of_year
from mcqflow.data.gaokao import analysis_letter, parse_example, read_file, split_inline, tidy
from mcqflow.data.generate import GenerateParams, chain_from_analysis, generate
from mcqflow.data.llm import LLMParams, ResponseCache
from mcqflow.quality.validation import ValidateParams, leakage, resolve_option, validate

STATEMENTS = (
    "5．（ 4分）从2013年开始，某市在社区推动基层党组织和自治组织代表、社区\n居民代表 、相关社会组织代表等组成民情理事会 。"
    "民情理事会通过协商讨论 ，\n促进难题的解决 ，得益于民情理事会 （\u3000\u3000） \n①提供管理有效的利益协商渠道  \n"
    "②完善了基层民主自治的组织形式  \n③发挥了多方主体参与社区治理的作用  \n④明确了社区居民参加基层民主协商的义务。  \n"
    "A．①③  B．①④  C．②③  D．②④\n"
)
PASSAGE = (
    "3．（ 4分）当前我国农业补贴的重心已由流通环节向生产环节转变。 回答 3﹣4题。  \n我国农业补贴重心转变的目的在于  \n"
    "①增加农业生产者收入②优化农产品需求结构  \n③缩小农产品供需缺口④稳定农产品市场供给（ \u3000\u3000） \n"
    "A．①③  B．①④  C．②③  D．②④\n"
)
PLAIN = (
    "1．（ 4分）西周分封制在中国历史上影响深远。下列省、自治区中，其简称源\n自西周封国国名的是（ 　　） \n"
    "A．河南、河北  B．湖南、湖北  C．山东、山西  D．广东、广西\n"
)
ANALYSIS = (
    "西周分封的诸侯国主要有鲁齐燕卫宋晋 。A项河南的简称是豫 ，河北的\n简称是冀；D项广东的简称是粤。"
    "故排除 ABD三项。  \nC项山东的简称是鲁 ，山西的简称是晋 。故C项\n正确。  \n故选： C。\n"
)


def example(question=PLAIN, answer=("C",), year="2016", index=0, analysis=ANALYSIS):
    return {"year": year, "category": "（新课标ⅰ）", "question": question, "answer": list(answer),
            "analysis": analysis, "index": index, "score": 4}  # fmt: skip


def test_inline_options_statements_and_score_prefix():
    stem, options = split_inline(STATEMENTS)
    assert options == {"A": "①③", "B": "①④", "C": "②③", "D": "②④"}
    lines = stem.splitlines()
    assert lines[0].startswith(
        "从2013年开始，某市在社区推动基层党组织和自治组织代表、社区居民代表、相关社会组织代表"
    )
    assert lines[0].endswith("得益于民情理事会（　　）")  # broken lines joined, layout spaces gone
    assert [ln[0] for ln in lines[1:]] == list("①②③④")  # one statement per line
    assert "4分" not in stem and "5．" not in stem


def test_shared_passage_instruction_goes_and_inline_statements_get_their_own_lines():
    stem, _ = split_inline(PASSAGE)
    assert "回答" not in stem and "3﹣4题" not in stem
    assert stem.startswith("当前我国农业补贴的重心已由流通环节向生产环节转变。")
    assert [ln[:1] for ln in stem.splitlines()[1:]] == list("①②③④")


def test_last_complete_label_sequence_wins_and_latin_spaces_stay():
    q = "2．下列说法中，A．B两国的判断（ ）涉及 Adam Smith 的观点\nA．P0，Q0 B．P1，Q2 C．P1，Q4 D．P2，Q1\n"
    stem, options = split_inline(q)
    assert options == {"A": "P0，Q0", "B": "P1，Q2", "C": "P1，Q4", "D": "P2，Q1"}
    assert "Adam Smith" in stem


@pytest.mark.parametrize(
    "question, answer, reason",
    [
        ("9．这表明（ ）\n①甲\n②乙\nA．①② B．①③ C．②④ \n", ["A"], "no complete A-D option sequence"),
        ("1．下列图示正确的是（ ）\nA．   B．  \nC．   D．\n", ["A"], "empty option A, B, C, D"),
        (PLAIN, ["A", "C"], "is not one letter"),
        (PLAIN, [], "is not one letter"),
        (PLAIN, ["E"], "is not one of A, B, C, D"),
    ],
)
def test_rows_that_cannot_be_records_are_refused_with_the_reason(question, answer, reason):
    with pytest.raises(ValueError, match=reason):
        parse_example(example(question, answer), "历史", "x.json:1")


def test_record_keeps_year_subject_and_analysis():
    r = parse_example(example(), "历史", "x.json:1")
    assert (r.id, r.topic, r.year, r.answer, r.lang) == ("gaokao-历史-2016-0", "历史", "2016", "C", "zh")
    assert r.analysis.endswith("故选：C。") and "\n" not in r.analysis
    assert (
        r.question == "西周分封制在中国历史上影响深远。下列省、自治区中，其简称源自西周封国国名的是（　　）"
    )


def test_analysis_letter_reads_the_conclusion():
    assert analysis_letter(ANALYSIS) == "C"
    assert analysis_letter("……故答案应选B。") == "B"
    assert analysis_letter("故A正确；故B错误；故C错误。") == "A"
    assert analysis_letter("①②正确，③④错误。") is None
    assert tidy("成员国 90%的贸易\n商品 （ 　　）") == "成员国90%的贸易商品（　　）"


def test_a_file_in_gaokao_shape_accounts_for_every_row(tmp_path):
    rows = [example(index=0), example(STATEMENTS, ["A"], index=1, analysis="①③符合题意。\n故选：A。"),
            example(PASSAGE, ["A"], index=2), example("1．无选项的题\n", index=3),
            example(PLAIN, ["A", "B"], index=4), "not an object"]  # fmt: skip
    path = tmp_path / "2010-2022_History_MCQs.json"
    path.write_text(json.dumps({"keywords": "x", "example": rows}, ensure_ascii=False), encoding="utf-8")
    records, rejected, n = read_file(path)
    assert n == 6 == len(records) + len(rejected)
    assert [r.row for r in rejected] == [4, 5, 6]
    assert "no complete A-D option sequence" in rejected[0].reason and "not one letter" in rejected[1].reason
    assert {r.topic for r in records} == {"历史"}
    (tmp_path / "bad.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(UserError, match="bad.json: not a GAOKAO-Bench JSON file"):
        read_file(tmp_path / "bad.json")


def test_vendored_files_rows_in_equal_records_plus_rejected():
    ds = load_dataset(ROOT / "data/gaokao")
    assert (ds.format, ds.script, ds.split_by, list(ds.langs)) == ("gaokao-bench", "hans", "year", ["zh"])
    total = 0
    for path in ds.files("zh"):
        records, rejected, n = read_file(path)
        assert n == len(records) + len(rejected)
        assert all(r.reason for r in rejected)
        total += n
    assert total == 607
    assert "Apache License" in (ROOT / "data/gaokao/LICENSE").read_text()
    assert "Xiaotian Zhang" in (ROOT / "data/gaokao/README.md").read_text()  # the credit it asks for


def test_split_by_year():
    years = {"train": [2010, 2018], "dev": [2019, 2020], "test": [2021, 2022]}
    assert [split_of_year(y, years) for y in ("2010", "2018", "2019", "2021", "2023", None)] == [
        "train", "train", "dev", "test", None, None]  # fmt: skip


def run_ingest(tmp_path, lang, source, years=None):
    params = {"data": {"source": str(source), **({"years": years} if years else {})}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(ROOT / "stages/ingest.py"), "--lang", lang, "--source", str(source),
         "--out", "out", "--rejected", "rej", "--metrics", "m.json"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip


def test_ingest_stage_splits_gaokao_by_year_and_skips_english(tmp_path):
    p = run_ingest(tmp_path, "zh", ROOT / "data/gaokao")
    assert p.returncode == 0, p.stderr
    m = json.loads((tmp_path / "m.json").read_text())["zh"]
    assert m["source"]["rows"] == 607 == m["source"]["kept"] + m["source"]["rejected"]
    splits = {s: read_records(tmp_path / "out" / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert {r.year for r in splits["train"]} <= {str(y) for y in range(2010, 2019)}
    assert {r.year for r in splits["dev"]} == {"2019", "2020"}
    assert {r.year for r in splits["test"]} == {"2021", "2022"}
    assert all(r.answer for r in splits["test"])  # the test years keep their labels, to be scored
    rejected = sum(len((tmp_path / "rej" / f"{s}.jsonl").read_text().splitlines()) for s in splits)
    assert rejected == m["source"]["rejected"] > 0
    p = run_ingest(tmp_path, "en", ROOT / "data/gaokao")
    assert p.returncode == 0 and "ingest: en skipped:" in p.stdout
    assert "skipped" in json.loads((tmp_path / "m.json").read_text())["en"]
    assert all(not (tmp_path / "out" / f"{s}.jsonl").read_text() for s in splits)


def test_ingest_stage_bad_years_and_bad_source_are_one_line(tmp_path):
    p = run_ingest(
        tmp_path,
        "zh",
        ROOT / "data/gaokao",
        {"train": [2010, 2019], "dev": [2019, 2020], "test": [2021, 2022]},
    )
    assert p.returncode == 2 and "overlap" in p.stderr and "Traceback" not in p.stderr
    p = run_ingest(tmp_path, "zh", tmp_path / "nowhere")
    assert p.returncode == 2 and "not a folder" in p.stderr and "Traceback" not in p.stderr


def test_dataset_yaml_problems_are_one_line(tmp_path):
    (tmp_path / "dataset.yaml").write_text("format: pdf\nlangs: {zh: [a.json]}\n")
    with pytest.raises(UserError, match="format: 'pdf': expected one of files | gaokao-bench"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.yaml").write_text("format: gaokao-bench\nlangs: {zh: [a.json]}\n")
    with pytest.raises(UserError, match="a.json: file not found"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.yaml").unlink()
    for s in ("train", "dev", "test"):
        (tmp_path / f"{s}.csv").write_text("x")
    ds = load_dataset(tmp_path)
    assert ds.format == "files" and list(ds.langs) == ["zh"]


def gaokao_record(analysis=ANALYSIS, answer="C"):
    return parse_example(example(analysis=analysis, answer=[answer]), "历史", "x.json:1")


def test_analysis_becomes_a_six_tag_chain():
    chain, why = chain_from_analysis(gaokao_record())
    assert why is None
    parsed = parse_chain(chain)
    assert parsed.tags == ["question", "think", "reasoning", "reflection", "adjustment", "output"]
    assert parsed.output_letter() == "C"
    assert len(parsed.steps()) >= 3
    reasoning = parsed.texts("reasoning")[0]
    assert "山东的简称是鲁" in reasoning and "故选" not in reasoning
    assert reasoning.splitlines()[-1].endswith("选项C（山东、山西）符合题意。")
    assert "其简称源自西周封国国名的是（　　）" in parsed.texts("think")[0]


def test_an_analysis_that_disagrees_with_gold_is_refused_never_used():
    rec = gaokao_record(answer="D")
    assert chain_from_analysis(rec) == (None, "the analysis concludes C, the gold answer is D")
    out = generate(
        [rec],
        GenerateParams(),
        LLMParams(backend="replay", model="m"),
        ResponseCache("/nonexistent-cache"),
        ROOT / "prompts",
    )
    assert out.records[0].reasoning is None and out.records[0].chain_source is None
    assert [r.reason for r in out.rejected] == ["the analysis concludes C, the gold answer is D"]
    assert out.metrics["analyses_refused"] == 1
    good = generate(
        [gaokao_record()],
        GenerateParams(),
        LLMParams(backend="replay", model="m"),
        ResponseCache("/nonexistent-cache"),
        ROOT / "prompts",
    )
    assert good.records[0].chain_source == "analysis" and good.metrics["requests"] == 0


def test_teacher_gets_the_analysis_and_gold_letter(tmp_path):
    from mcqflow.core.reasoning import build_chain

    seen = []

    def teacher(text):
        seen.append(text)
        gold = re.search(r"正确答案是选项([A-D])", text).group(1)
        return build_chain("题", "想", ["读材料", "比较选项"], "中立", "无", gold)

    with FakeLLM(responder=teacher) as server:
        llm = LLMParams(backend="openai", model="m", base_url=server.url, concurrency=2)
        out = generate(
            [gaokao_record()],
            GenerateParams(analysis_chains="llm"),
            llm,
            ResponseCache(tmp_path),
            ROOT / "prompts",
        )
    assert len(seen) == 1 and "人工解析：" in seen[0] and "山东的简称是鲁" in seen[0] and "选项C" in seen[0]
    assert (
        out.records[0].chain_source == "llm+analysis"
        and parse_chain(out.records[0].reasoning).output_letter() == "C"
    )


def rec(i, question, options, answer):
    return Record(
        id=str(i), question=question, options=dict(zip("ABCD", options, strict=True)), answer=answer
    )


def test_leakage_sees_answers_not_only_questions():
    train = [
        rec(
            "t1",
            "哪一項描述屬於集體安全的核心理念與做法",
            ["共同回應侵略", "多邊主義", "國家主權", "軟實力"],
            "A",
        )
    ]
    dev = [
        rec(
            "d1", "完全不同的題幹文字描述其他事情呢", ["甲", "共同回應侵略", "乙", "丙"], "B"
        ),  # a train gold answer
        rec(
            "d2", "另外一道毫不相干的題目在這裡喔", ["多邊主義", "甲", "乙", "丙"], "A"
        ),  # a train option only
        rec(
            "d3", "哪一項描述屬於集體安全的核心理念與做法", ["丁", "戊", "己", "庚"], "A"
        ),  # a near-copy stem
    ]
    rows = leakage(dev, train)
    assert [(r["gold_in_train_options"], r["gold_in_train_answers"]) for r in rows] == [
        (True, True), (True, False), (False, False)]  # fmt: skip
    assert rows[2]["nearest_train"] == "t1" and rows[2]["similarity"] == 1.0 and rows[0]["similarity"] < 0.2


def test_statement_choices_compare_by_their_statements():
    q = "这表明（　　）\n①甲事实\n②乙事实\n③丙事实\n④丁事实"
    assert resolve_option("①③", q) == "甲事实；丙事实"
    assert resolve_option("①⑤", q) == "①⑤" and resolve_option("河南、河北", q) == "河南、河北"
    other = "完全不同的题干（　　）\n①戊\n②己\n③丙\n④庚"
    train = [rec("t", other, ["①②", "③④", "①③", "②④"], "A")]
    dev = [rec("d", q, ["①②", "①③", "②④", "③④"], "A")]  # '①②' resolves to other statements: no leak
    assert not leakage(dev, train)[0]["gold_in_train_options"]


def test_leakage_gate_stops_above_the_configured_share():
    train = [
        rec(f"t{i}", f"訓練題目第{i}題的內容是什麼", [f"甲{i}", f"乙{i}", f"丙{i}", f"丁{i}"], "A")
        for i in range(8)
    ]
    dev = [
        rec(f"d{i}", f"開發題目第{i}題問的是另外的事", [f"甲{i}", f"戊{i}", f"己{i}", f"庚{i}"], "A")
        for i in range(4)
    ]
    dev += [
        rec(f"e{i}", f"開發題目第{i}題沒有洩漏的答案", [f"辛{i}", f"壬{i}", f"癸{i}", f"子{i}"], "B")
        for i in range(4)
    ]
    strict = ValidateParams(max_answer_leak_share=0.25, max_letter_share=1.0)
    rep = validate(dev, "dev", "mcq", strict, train=train, source="dev.jsonl")
    assert rep.metrics["leakage"]["gold_in_train_answers_share"] == 0.5
    assert any("gold_in_train_answers" in f for f in rep.failures)
    loose = validate(dev, "dev", "mcq", ValidateParams(max_letter_share=1.0), train=train, source="dev.jsonl")
    assert not loose.failures and loose.metrics["leakage"]["gold_in_train_answers_share"] == 0.5


def test_the_gate_expects_the_dataset_script():
    hans = [
        rec(
            f"d{i}",
            f"这是关于经济发展的问题{i}号",
            [f"选项甲{i}", f"选项乙{i}", f"选项丙{i}", f"选项丁{i}"],
            "ABCD"[i % 4],
        )
        for i in range(8)
    ]
    assert any("script" in f for f in validate(hans, "dev", "mcq", ValidateParams(), script="hant").failures)
    assert not validate(hans, "dev", "mcq", ValidateParams(), script="hans").failures
