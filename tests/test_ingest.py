import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from mcqflow.core.errors import UserError
from mcqflow.core.prompts import prompt_messages
from mcqflow.core.schema import Record, read_records, write_jsonl
from mcqflow.data.ingest import clean_option, ingest, ingest_split, normalize_answer, parse_chat


def test_kaggle_test_with_real_file_quirks(write):
    p = write(
        "test.csv",
        "ID,Question,Option A,Option B,Option C,Option D,,\n"
        "1,  關於人權的問題？ ,A. 甲,B. 乙,C. 丙,D. 丁,,\n"
        "2,关于环境的问题？,(A) 甲,(B) 乙,(C) 丙,(D) 丁,,\n"
        "3,關於人權的問題？,A．甲,B．乙,C．丙,D．丁,,\n"
        "4,題目\u3000四,甲 ,　乙,丙,D、丁,,\n",
    )
    res = ingest(p)
    assert res.format == "test" and res.rows == 4 and not res.rejected
    r1, r2, r3, r4 = res.records
    assert r1.id == "1" and r1.question == "關於人權的問題？"
    assert r1.options == {"A": "甲", "B": "乙", "C": "丙", "D": "丁"}
    assert r2.options == r1.options and r2.question == "关于环境的问题？"  # Simplified row kept as is
    assert r3.options == r1.options and r3.question == r1.question  # duplicate question, separate ID
    assert r4.question == "題目 四" and r4.options == r1.options
    assert all(r.answer is None and r.lang == "zh" for r in res.records)


def test_option_prefix_only_strips_its_own_letter():
    assert clean_option("A", "A. 甲") == "甲"
    assert clean_option("B", "A. 甲") == "甲"  # a stray label of another option goes too
    assert clean_option("A", "1.5倍") == "1.5倍" and clean_option("B", "B型血") == "B型血"
    assert clean_option("A", "A股市場") == "A股市場"
    assert clean_option("C", "（C）丙") == "丙"


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("A", "A"),
        (" A", "A"),
        ("a", "A"),
        ("A.", "A"),
        ("(b)", "B"),
        ("Ｃ", "C"),
        ("d ", "D"),
        ("nan", None),
        ("", None),
        ("NaN", None),
    ],
)
def test_normalize_answer(raw, want):
    assert normalize_answer(raw) == want


@pytest.mark.parametrize("raw", ["E", "AB", "答案A", "1"])
def test_normalize_answer_rejects(raw):
    with pytest.raises(ValueError, match="not one of A, B, C, D"):
        normalize_answer(raw)


def test_kaggle1_train_messy_answers_and_nan(write):
    p = write(
        "train.csv",
        "ID,question,option_A,option_B,option_C,option_D,answer\n"
        "t1,問一,甲,乙,丙,丁, A\n"
        "t2,問二,甲,乙,丙,丁,b\n"
        "t3,問三,甲,乙,丙,丁,C.\n"
        "t4,問四,甲,乙,丙,丁,nan\n"
        "t5,問五,甲,乙,丙,丁,E\n",
    )
    res = ingest_split(p, "train")
    assert [r.answer for r in res.records] == ["A", "B", "C"]
    reasons = {r.row: r.reason for r in res.rejected}
    assert reasons == {4: "no answer in a labelled split", 5: "answer 'E' is not one of A, B, C, D"}
    assert res.rows == 5  # rows in = kept + rejected


def test_reasoning_train_chinese_headers(write):
    chain = (
        "<question>問</question>\n<think>想</think>\n<reasoning>step 1: 甲\nstep 2: 乙</reasoning>"
        "<reflection>中立</reflection><adjustment>無</adjustment><output>B</output>"
    )
    p = write("r.csv", f'題目,選項A,選項B,選項C,選項D,正確答案,推理正確答案\n問一,甲,乙,丙,丁,B,"{chain}"\n')
    (r,) = ingest(p).records
    assert r.answer == "B" and r.reasoning == chain and r.id == "r-00001"


def test_reasoning_train_simplified_headers(write):
    p = write(
        "s.csv", "题目,选项A,选项B,选项C,选项D,正确答案,推理正确答案\n问一,甲,乙,丙,丁,C,<output>C</output>\n"
    )
    (r,) = ingest(p).records
    assert r.answer == "C" and r.question == "问一"


def test_tsv(write):
    p = write(
        "x.tsv",
        "question\toption_A\toption_B\toption_C\toption_D\tcorrect_answer\treasoning\n"
        "What?\tone\ttwo\tthree\tfour\tD\t\n",
    )
    res = ingest(p)
    (r,) = res.records
    assert res.format == "tsv" and r.answer == "D" and r.reasoning is None and r.lang == "en"


def test_cmmlu_unnamed_index(write):
    p = write("c.csv", ",Question,A,B,C,D,Answer\n0,問一,甲,乙,丙,丁,A\n1,問二,甲,乙,丙,丁,D\n")
    res = ingest(p)
    assert [r.id for r in res.records] == ["0", "1"] and [r.answer for r in res.records] == ["A", "D"]


def test_chat_jsonl_written_by_earlier_scripts(write):
    rows = [
        {
            "messages": [
                {"role": "system", "content": "你是助手"},
                {
                    "role": "user",
                    "content": "以下是單選題。\n題目：關於人權的問題？\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n請回答。",
                },
                {"role": "assistant", "content": "答案：C"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "问题：环境？\n(A) 甲\n(B) 乙\n(C) 丙\n(D) 丁"},
                {
                    "role": "assistant",
                    "content": "<think>想</think><reasoning>step 1: x</reasoning><output>d</output>",
                },
            ]
        },
    ]
    p = write("chat.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    res = ingest(p)
    a, b = res.records
    assert res.format == "chat"
    assert (a.question, a.answer, a.options["C"], a.reasoning) == ("關於人權的問題？", "C", "丙", None)
    assert (b.question, b.answer, b.options["A"]) == ("环境？", "D", "甲")
    assert b.reasoning.startswith("<think>")


def test_chat_round_trip_of_our_own_prompt():
    rec = Record(
        id="x", question="關於法治的問題？", options={"A": "甲", "B": "乙", "C": "丙", "D": "丁"}, answer="B"
    )
    msgs = prompt_messages(rec, "plain") + [{"role": "assistant", "content": "B"}]
    back = parse_chat({"id": "x", "messages": msgs}, default_id="d", source="s")
    assert (back.id, back.question, back.options, back.answer) == ("x", rec.question, rec.options, "B")


def test_chat_rows_with_problems_are_rejected_with_reason(write):
    p = write(
        "chat.jsonl",
        '{"messages": [{"role": "user", "content": "題目：問\\nA. 甲\\nB. 乙"}]}\n'
        "{not json\n"
        '{"messages": [{"role": "user", "content": "題目：問\\nA. 甲\\nB. 乙\\nC. 丙\\nD. 丁"},'
        ' {"role": "assistant", "content": "我不知道"}]}\n',
    )
    res = ingest(p)
    assert not res.records
    reasons = [r.reason for r in res.rejected]
    assert "option lines for AB of A-D" in reasons[0]
    assert reasons[1].startswith("invalid JSON")
    assert "states no answer letter" in reasons[2]


def test_chat_content_parts_are_read(write):
    """OpenAI's content-parts shape ([{"type": "text", "text": …}]) is a transcript format users have: its
    text parts are read (an image part carries none); content of another shape is a rejected row."""
    parts = [{"type": "text", "text": "題目：關於法治的問題？\n"}, {"type": "image_url", "image_url": {"url": "x"}},
             {"type": "text", "text": "A. 甲\nB. 乙\nC. 丙\nD. 丁"}]  # fmt: skip
    rows = [
        {"messages": [{"role": "user", "content": parts},
                      {"role": "assistant", "content": [{"type": "text", "text": "答案：D"}]}]},
        {"messages": [{"role": "user", "content": 42}]},
    ]  # fmt: skip
    res = ingest(write("parts.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)))
    (rec,) = res.records
    assert (rec.question, rec.options["D"], rec.answer) == ("關於法治的問題？", "丁", "D")
    assert [r.row for r in res.rejected] == [2] and "content parts" in res.rejected[0].reason


def test_deep_nesting_and_huge_integers_are_rows_not_tracebacks(write):
    good = {
        "id": "ok",
        "question": "哪一項正確呢？",
        "options": dict(zip("ABCD", "甲乙丙丁", strict=True)),
        "answer": "A",
    }
    deep = '{"id": "deep", "question": ' + "[" * 20_000 + "]" * 20_000 + "}"  # under the line limit
    huge = json.dumps({**good, "id": 0}).replace('"id": 0', '"id": ' + "9" * 5_000)
    res = ingest(write("rows.jsonl", "\n".join([json.dumps(good, ensure_ascii=False), deep, huge]) + "\n"))
    assert [r.id for r in res.records] == ["ok", "9" * 5_000]  # a 5,000-digit ID is read as its digits
    assert [(r.row, r.reason) for r in res.rejected] == [(2, "invalid JSON (nested too deeply to read)")]
    path = write("deep.jsonl", deep + "\n")
    with pytest.raises(UserError, match=r"deep.jsonl: line 1: .*nested too deeply"):
        read_records(path)


def test_canonical_records_round_trip(tmp_path):
    recs = [
        Record(
            id=str(i),
            question=f"問{i}",
            options={"A": "甲", "B": "乙", "C": "丙", "D": "丁"},
            answer="A",
            topic="人權議題",
        )
        for i in range(3)
    ]
    write_jsonl(tmp_path / "r.jsonl", recs)
    assert ingest(tmp_path / "r.jsonl").records == recs == read_records(tmp_path / "r.jsonl")


def test_row_problems(write):
    p = write(
        "t.csv",
        "ID,Question,Option A,Option B,Option C,Option D\n"
        "1,,甲,乙,丙,丁\n2,問,甲,,丙,丁\n3,問,甲,乙,丙,丁\n3,問,甲,乙,丙,丁\n",
    )
    res = ingest(p)
    assert [r.reason for r in res.rejected] == [
        "empty question",
        "empty option B",
        "duplicate id '3' (first at row 3)",
    ]
    assert [r.id for r in res.records] == ["3"]


def test_test_split_refuses_to_drop_a_row(write):
    p = write("t.csv", "ID,Question,Option A,Option B,Option C,Option D\n1,,甲,乙,丙,丁\n")
    with pytest.raises(UserError, match=r"t.csv: row 1: empty question \(a test row cannot be dropped"):
        ingest_split(p, "test")


@pytest.mark.parametrize(
    ("name", "content", "encoding", "message"),
    [
        (
            "a.csv",
            "foo,bar\n1,2\n",
            "utf-8",
            r"a.csv: row 0 \(header\): unrecognised format, no column for question",
        ),
        (
            "b.csv",
            "ID,Question,Option A,Option B,Option C,Option D\n1,café au lait,é,è,ê,ë\n",
            "latin-1",
            "not UTF-8",
        ),
        # other code pages whose bytes decode as GB18030 (the fault run got 擔杮岅偺幙栤偱偡 and rc 0)
        (
            "kr.csv",
            "id,question,A,B,C,D,answer\n1,한국어 질문입니다. 다음 중 옳은 것은,가,나,다,라,A\n",
            "euc_kr",
            r"kr.csv: not UTF-8 \(byte 29\); read as gb18030 it is not Chinese text \(mess ratio 0.1\d\)",
        ),
        (
            "jp.csv",
            "id,question,A,B,C,D,answer\n1,日本語の質問です。正しいものは,甲,乙,丙,丁,A\n",
            "shift_jis",
            "not Chinese text|not UTF-8",
        ),
        ("c.csv", "  \n", "utf-8", "file is empty"),
        ("d.jsonl", "{oops\n", "utf-8", r"d.jsonl: line 1: invalid JSON"),
    ],
)
def test_file_level_errors_are_one_line(write, name, content, encoding, message):
    p = write(name, content, encoding)
    with pytest.raises(UserError, match=message) as e:
        ingest(p)
    assert "\n" not in str(e.value)


def test_missing_file():
    with pytest.raises(UserError, match="file not found"):
        ingest("/nonexistent/x.csv")


def test_sample_data_ingests_and_is_balanced():
    for split, n in (("train", 180), ("dev", 60), ("test", 62)):
        zh = ingest_split(ROOT / f"data/sample/{split if split != 'train' else 'train'}.csv", split).records
        en = ingest_split(ROOT / f"data/sample/en/{split}.jsonl", split).records
        assert len(zh) == len(en) == n
        assert [r.id for r in zh] == [r.id for r in en]
        if split != "test":
            assert [r.answer for r in zh] == [r.answer for r in en]
            counts = {k: sum(r.answer == k for r in zh) for k in "ABCD"}
            assert max(counts.values()) - min(counts.values()) <= 1, counts
    train = ingest_split(ROOT / "data/sample/train.csv", "train").records
    assert all(r.reasoning and r.reasoning.endswith(f"<output>{r.answer}</output>") for r in train)
    assert len({r.topic for r in train}) == 15


_cell = st.text(alphabet=list('甲乙 A.,"\n\tBCDnaN問題\u3000'), max_size=8)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_cell, min_size=0, max_size=9), max_size=12))
def test_rows_in_equal_records_plus_rejected(tmp_path_factory, rows):
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["ID", "question", "option_A", "option_B", "option_C", "option_D", "answer"])
    w.writerows(rows)
    p = tmp_path_factory.mktemp("h") / "junk.csv"
    p.write_text(buf.getvalue(), encoding="utf-8")
    try:
        res = ingest_split(p, "train")
    except UserError:
        return  # e.g. file is blank: one line, not a crash
    assert res.rows == len(res.records) + len(res.rejected)
    assert all(r.reason for r in res.rejected)


def test_ids_are_kept_byte_for_byte_but_the_cell_is_trimmed(write):
    from mcqflow.data.ingest import ingest_split

    p = write("test.csv", 'id,question,A,B,C,D\n" q  1\u3000x ",題目一？,甲,乙,丙,丁\n')
    assert [r.id for r in ingest_split(p, "test", "zh").records] == ["q  1\u3000x"]


@pytest.mark.parametrize("encoding", ["utf-16", "big5", "gb18030", "utf-8-sig"])
def test_legacy_and_utf16_files_give_the_same_records_as_utf8(tmp_path, encoding):
    from mcqflow.data.ingest import ingest

    src = (ROOT / "data/sample/test.csv").read_text(encoding="utf-8").splitlines()
    lines = [src[0]]
    for line in src[1:]:
        try:
            line.encode("big5")  # the Traditional rows: Big5 has no Simplified characters
        except UnicodeEncodeError:
            continue
        lines.append(line)
    text = "\n".join(lines[:20]) + "\n"
    utf8, other = tmp_path / "u.csv", tmp_path / "o.csv"
    utf8.write_text(text, encoding="utf-8")
    other.write_bytes(text.encode(encoding))
    a, b = ingest(utf8), ingest(other)
    same = [{**r.to_dict(), "source": ""} for r in a.records]
    assert [{**r.to_dict(), "source": ""} for r in b.records] == same and len(same) == 19
    assert b.encoding == {"utf-8-sig": "utf-8"}.get(encoding, encoding)


def test_unreadable_bytes_and_non_files_are_one_line(tmp_path):
    from mcqflow.data.ingest import ingest

    bad = tmp_path / "bad.csv"
    bad.write_bytes("id,question\nq1,café au lait, naïve\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8 .* Big5 or GB18030"):
        ingest(bad)
    with pytest.raises(UserError, match="not a regular file"):
        ingest(tmp_path)


def test_sample_data_regenerates_byte_identically(tmp_path):
    """data/sample/ is what scripts/make_sample.py writes from scripts/concept_bank.json, byte for byte."""
    import subprocess
    import sys

    subprocess.run([sys.executable, str(ROOT / "scripts/make_sample.py"), "--out", str(tmp_path)], check=True)
    for path in sorted((ROOT / "data/sample").rglob("*")):
        if path.is_file():
            assert (tmp_path / path.relative_to(ROOT / "data/sample")).read_bytes() == path.read_bytes(), path


def test_language_is_read_per_row(write):
    """50 English rows then Chinese ones: each row is its own language (the file's first 50 decided all)."""
    en = "".join(f"e{i},Which statement about trade policy {i} is right?,tariffs,quotas,subsidies,none,A\n"
                 for i in range(50))  # fmt: skip
    zh = "z1,下列關於GDP的說法正確的是？,甲,乙,丙,丁,B\nz2,What does guanxi (關係) mean in business?,a,b,c,d,C\n"
    res = ingest(write("mixed.csv", "id,question,A,B,C,D,answer\n" + en + zh))
    langs = {r.id: r.lang for r in res.records}
    assert {langs[f"e{i}"] for i in range(50)} == {"en"} and langs["z1"] == "zh" and langs["z2"] == "en"
