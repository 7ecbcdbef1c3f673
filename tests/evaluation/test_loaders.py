import base64
import csv
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rl.episode import AgentTask
from tasks.evaluation.loaders import (
    BENCHMARKS,
    BenchmarkFormatError,
    load_benchmark,
    read_records,
)


def write(path: Path, rows: list[dict]) -> Path:
    """Write rows in the format the file extension names."""
    suffix = path.suffix
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False), "utf-8")
    elif suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif suffix in (".csv", ".tsv"):
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(
                fh, fieldnames=list(rows[0]), delimiter="\t" if suffix == ".tsv" else ","
            )
            w.writeheader()
            w.writerows(rows)
    return path


def sha256_xor_encrypt(text: str, password: str) -> str:
    data = text.encode()
    key = hashlib.sha256(password.encode()).digest()
    return base64.b64encode(bytes(b ^ key[i % 32] for i, b in enumerate(data))).decode()


def canary_xor_encrypt(text: str, canary: str) -> str:
    data, key = text.encode(), canary.encode()
    return base64.b64encode(bytes(b ^ key[i % len(key)] for i, b in enumerate(data))).decode()


def test_gaia_jsonl_text_only(tmp_path):
    rows = [
        {"task_id": "g1", "Question": "What year?", "Level": 1, "Final answer": "1999",
         "file_name": "", "Annotator Metadata": {"Steps": "..."}},
        {"task_id": "g2", "Question": "Read the sheet", "Level": 2, "Final answer": "7",
         "file_name": "sheet.xlsx"},
        {"task_id": "g3", "Question": "Who?", "Level": 3, "Final answer": "Ada", "file_name": ""},
    ]  # fmt: skip
    result = load_benchmark("gaia", write(tmp_path / "metadata.jsonl", rows))
    assert [i.id for i in result.items] == ["g1", "g3"]
    assert result.dropped == {"has_attachment": 1}
    assert result.items[0].answers == ["1999"]
    assert result.items[1].capability == "level-3"


def test_browsecomp_encrypted_csv_decrypts(tmp_path):
    canary = "BENCHMARK DATA SHOULD NEVER APPEAR AS PLAIN TEXT ONLINE. canary GUID test"
    rows = [
        {"problem": sha256_xor_encrypt("Which paper, published before 2020, ...?", canary),
         "answer": sha256_xor_encrypt("Attention Is All You Need", canary),
         "problem_topic": "Science & technology", "canary": canary},
    ]  # fmt: skip
    (item,) = load_benchmark("browsecomp", write(tmp_path / "browse_comp.csv", rows)).items
    assert item.question == "Which paper, published before 2020, ...?"
    assert item.answers == ["Attention Is All You Need"]
    assert item.capability == "Science & technology"
    assert item.benchmark == "browsecomp"


def test_browsecomp_plaintext_copy_loads(tmp_path):
    rows = [{"problem": "Which city hosted it?", "answer": "1995", "canary": "c"}]
    (item,) = load_benchmark("browsecomp", write(tmp_path / "plain.jsonl", rows)).items
    assert (item.question, item.answers) == ("Which city hosted it?", ["1995"])


def test_browsecomp_zh_parquet_decrypts_chinese(tmp_path):
    canary = "canary GUID zh"
    rows = [{"Topic": "艺术", "Question": sha256_xor_encrypt("哪位画家？", canary),
             "Answer": sha256_xor_encrypt("齐白石", canary), "canary": canary}]  # fmt: skip
    (item,) = load_benchmark("browsecomp-zh", write(tmp_path / "zh.parquet", rows)).items
    assert (item.question, item.answers, item.capability) == ("哪位画家？", ["齐白石"], "艺术")


def test_xbench_csv_decrypts_with_canary_key(tmp_path):
    canary = "xbench-canary-1234"
    rows = [{"id": "1", "prompt": canary_xor_encrypt("中国第一个…是哪一年？", canary),
             "answer": canary_xor_encrypt("1978", canary), "canary": canary}]  # fmt: skip
    (item,) = load_benchmark("xbench-deepsearch", write(tmp_path / "DeepSearch.csv", rows)).items
    assert (item.id, item.question, item.answers) == ("1", "中国第一个…是哪一年？", ["1978"])


def test_wrong_canary_is_a_clear_error(tmp_path):
    rows = [{"problem": sha256_xor_encrypt("question text here", "right"),
             "answer": sha256_xor_encrypt("answer", "right"), "canary": "wrong"}]  # fmt: skip
    with pytest.raises(BenchmarkFormatError, match="does not decrypt"):
        load_benchmark("browsecomp", write(tmp_path / "b.csv", rows))


def test_hle_parquet_drops_image_questions(tmp_path):
    rows = [
        {"id": "h1", "question": "Compute x", "image": "", "answer": "42",
         "answer_type": "exactMatch", "category": "Math"},
        {"id": "h2", "question": "What is shown?", "image": "data:image/png;base64,AAAA",
         "answer": "cat", "answer_type": "exactMatch", "category": "Other"},
    ]  # fmt: skip
    result = load_benchmark("hle", write(tmp_path / "test.parquet", rows))
    assert [i.id for i in result.items] == ["h1"]
    assert result.dropped == {"has_image": 1}
    assert result.items[0].metadata["answer_type"] == "exactMatch"


def test_frames_tsv(tmp_path):
    rows = [{"": "0", "Prompt": "If my future wife ...?", "Answer": "Jane Ballou",
             "wiki_links": "['https://en.wikipedia.org/wiki/A']",
             "reasoning_types": "Multiple constraints"}]  # fmt: skip
    (item,) = load_benchmark("frames", write(tmp_path / "test.tsv", rows)).items
    assert (item.id, item.answers, item.capability) == (
        "0",
        ["Jane Ballou"],
        "Multiple constraints",
    )


def test_webwalkerqa_json_nested_info(tmp_path):
    rows = [{"Question": "When is the deadline?", "Answer": "March 21, 2025",
             "Root_Url": "https://2025.aclweb.org/",
             "Info": {"Hop": "multi-source", "Domain": "Conference", "Language": "English",
                      "Difficulty_Level": "Medium"}}]  # fmt: skip
    (item,) = load_benchmark("webwalkerqa", write(tmp_path / "main.json", rows)).items
    assert item.capability == "multi-source"
    assert item.metadata["root_url"] == "https://2025.aclweb.org/"
    assert item.metadata["difficulty_level"] == "Medium"


def test_seal0_parquet(tmp_path):
    rows = [{"question": "How many ...?", "answer": "3", "urls": ["https://a"],
             "freshness": "fast-changing", "topic": "Sports"}]  # fmt: skip
    (item,) = load_benchmark("seal-0", write(tmp_path / "seal_0.parquet", rows)).items
    assert (item.answers, item.capability, item.metadata["freshness"]) == (
        ["3"],
        "Sports",
        "fast-changing",
    )


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_heldout_synthesized_tasks(tmp_path, suffix):
    rows = [
        {"id": "t1", "question": "Q1?", "answers": ["a", "A."], "capability": "aggregation",
         "mask_urls": ["https://x.test/p"]},
        {"id": "t2", "question": "Q2?", "answers": ["b"], "capability": "enumeration",
         "mask_urls": []},
    ]  # fmt: skip
    result = load_benchmark("heldout", write(tmp_path / f"heldout{suffix}", rows))
    assert [i.answers for i in result.items] == [["a", "A."], ["b"]]
    # The mask travels into the episode: held-out tasks are scored with their pages hidden.
    assert result.items[0].as_task() == {"id": "t1", "question": "Q1?", "answers": ["a", "A."],
                                         "mask_urls": ["https://x.test/p"]}  # fmt: skip
    assert AgentTask.model_validate(result.items[0].as_task()).mask_urls == ["https://x.test/p"]
    assert result.items[1].as_task()["mask_urls"] == []


def test_missing_fields_error_names_expected_and_found(tmp_path):
    path = write(tmp_path / "wrong.jsonl", [{"query": "q", "gold": "a"}])
    with pytest.raises(BenchmarkFormatError) as err:
        load_benchmark("hle", path)
    message = str(err.value)
    assert "expected fields ['id', 'question', 'answer']" in message
    assert "found ['gold', 'query']" in message


def test_row_missing_a_field_is_named(tmp_path):
    path = write(tmp_path / "w.jsonl", [{"question": "q", "answer": "a"}, {"question": "q2"}])
    with pytest.raises(BenchmarkFormatError, match="row 1 lacks fields"):
        load_benchmark("seal-0", path)


def test_empty_answer_and_duplicate_ids_are_errors(tmp_path):
    with pytest.raises(BenchmarkFormatError, match="empty question or answer"):
        load_benchmark("seal-0", write(tmp_path / "e.jsonl", [{"question": "q", "answer": ""}]))
    dup = [{"id": "x", "question": "q", "answer": "a"}] * 2
    with pytest.raises(BenchmarkFormatError, match="duplicate id"):
        load_benchmark("hle", write(tmp_path / "d.jsonl", dup))


def test_bad_files_are_clear_errors(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"question": "q"}\n{not json\n')
    with pytest.raises(BenchmarkFormatError, match=r"bad.jsonl:2: not valid JSON"):
        read_records(tmp_path / "bad.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(BenchmarkFormatError, match="unsupported extension"):
        read_records(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError):
        read_records(tmp_path / "absent.csv")
    with pytest.raises(BenchmarkFormatError, match="unknown benchmark"):
        load_benchmark("mmlu", tmp_path / "x.txt")


def test_every_published_benchmark_has_a_loader():
    assert set(BENCHMARKS) == {
        "gaia", "browsecomp", "browsecomp-zh", "hle", "frames", "webwalkerqa", "seal-0",
        "xbench-deepsearch", "heldout",
    }  # fmt: skip
