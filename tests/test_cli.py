"""The command line as staff and operators use it: `civicdesk ask`, `kb check` and `eval`,
their output, their exit codes and their error messages."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.answering.policy import PolicyConfig
from bot.cli.main import main
from bot.config.settings import SETTINGS
from bot.platform.lengths import weibo_length

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = ROOT / "knowledge"


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder (no .env) with no civicdesk setting inherited from outside; the
    sample knowledge base is given by CIVICDESK_KNOWLEDGE."""
    for setting in SETTINGS:
        # set, then delete: monkeypatch then restores the original state even if the command
        # under test loads a .env file into os.environ.
        monkeypatch.setenv(setting.name, "")
        monkeypatch.delenv(setting.name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CIVICDESK_KNOWLEDGE", str(KNOWLEDGE))
    return tmp_path


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def ask_json(*argv: str) -> dict[str, object]:
    status, output = run("ask", *argv, "--json")
    assert status == 0
    lines = output.strip().splitlines()
    assert len(lines) == 1, "--json prints exactly one JSON object on one line"
    result = json.loads(lines[0])
    assert isinstance(result, dict)
    return result


# --- ask -----------------------------------------------------------------------------------


def test_ask_json_gives_the_decision_the_entry_the_reply_and_the_candidates() -> None:
    result = ask_json("诉讼费怎么交")

    assert {"decision", "entry_id", "reply", "candidates", "reason"} <= result.keys()
    assert result["decision"] == "answer"
    assert result["entry_id"] == "pay-court-fee"
    assert isinstance(result["reply"], str) and "court.example.gov/fees" in result["reply"]
    assert "收费窗口" in result["reply"]  # Chinese printed as is, not \u escapes
    assert isinstance(result["reason"], str) and result["reason"]
    candidates = result["candidates"]
    assert isinstance(candidates, list) and candidates
    assert candidates[0]["id"] == "pay-court-fee"
    for candidate in candidates:
        assert set(candidate) == {"id", "score"}
        assert 0.0 <= candidate["score"] <= 1.0


def test_ask_json_for_a_question_for_staff_says_escalate() -> None:
    result = ask_json("我的案子现在到哪一步了？")

    assert result["decision"] == "escalate"
    assert "转交工作人员" in str(result["reply"])


def test_ask_public_weibo_reply_fits_140_and_mentions_the_asker() -> None:
    result = ask_json("诉讼费怎么交", "--channel", "weibo", "--public", "--mention", "市民张三")

    reply = str(result["reply"])
    assert result["decision"] == "answer"
    assert reply.startswith("@市民张三 ")
    assert weibo_length(reply) <= 140


def test_ask_public_without_a_mention_uses_a_placeholder_handle() -> None:
    result = ask_json("诉讼费怎么交", "--channel", "weibo", "--public")

    assert str(result["reply"]).startswith("@")
    assert weibo_length(str(result["reply"])) <= 140


def test_ask_in_plain_text_shows_decision_entry_reply_length_and_candidates() -> None:
    status, output = run("ask", "how do I pay the court fee", "--channel", "weibo")

    assert status == 0
    assert "decision: answer" in output
    assert "entry:    pay-court-fee" in output
    assert re.search(r"reply \(weibo, \d+/140 weibo\):", output)
    assert "candidates:" in output
    assert "pay-court-fee" in output.split("candidates:")[1]


def test_ask_with_an_unknown_channel_is_a_usage_error_listing_the_channels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, output = run("ask", "诉讼费怎么交", "--channel", "myspace")

    assert status == 2
    assert output == ""
    error = capsys.readouterr().err
    assert "myspace" in error
    assert "weibo" in error and "telegram" in error


def test_ask_with_a_broken_knowledge_base_fails_and_says_to_run_kb_check(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = broken_copy(clean_environment)
    monkeypatch.setenv("CIVICDESK_KNOWLEDGE", str(broken))

    status, _ = run("ask", "诉讼费怎么交")

    assert status == 1
    error = capsys.readouterr().err
    assert "kb check" in error
    assert re.search(r"fees\.yaml:\d+: ", error)


def test_a_malformed_threshold_is_a_configuration_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CIVICDESK_ANSWER_THRESHOLD", "abc")

    status, output = run("ask", "诉讼费怎么交", "--json")

    assert status == 2
    assert output == ""
    error = capsys.readouterr().err
    assert "CIVICDESK_ANSWER_THRESHOLD" in error
    assert "Traceback" not in error


def test_thresholds_from_the_environment_change_the_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ask_json("诉讼费怎么交")["decision"] == "answer"
    monkeypatch.setenv("CIVICDESK_ANSWER_THRESHOLD", "1")
    monkeypatch.setenv("CIVICDESK_CLARIFY_THRESHOLD", "1")

    assert ask_json("诉讼费怎么交")["decision"] == "escalate"


def test_settings_are_read_from_a_dotenv_file_in_the_working_folder(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIVICDESK_KNOWLEDGE", "")
    monkeypatch.delenv("CIVICDESK_KNOWLEDGE")
    (clean_environment / ".env").write_text(
        f"CIVICDESK_KNOWLEDGE={KNOWLEDGE}\nCIVICDESK_DEFAULT_LANGUAGE=en\n", encoding="utf-8"
    )

    status, output = run("kb", "check")

    assert status == 0
    assert "knowledge OK" in output


def test_a_dotenv_knowledge_folder_may_start_with_a_tilde_for_the_home_directory(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = clean_environment / "home"
    shutil.copytree(KNOWLEDGE, home / "faq")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CIVICDESK_KNOWLEDGE", "")
    monkeypatch.delenv("CIVICDESK_KNOWLEDGE")
    (clean_environment / ".env").write_text("CIVICDESK_KNOWLEDGE=~/faq\n", encoding="utf-8")

    status, output = run("kb", "check")

    assert status == 0
    assert "knowledge OK" in output
    assert ask_json("诉讼费怎么交")["entry_id"] == "pay-court-fee"


# --- kb check ------------------------------------------------------------------------------


def broken_copy(folder: Path) -> Path:
    copy = folder / "knowledge"
    shutil.copytree(KNOWLEDGE, copy)
    fees = copy / "fees.yaml"
    text = fees.read_text(encoding="utf-8")
    assert "    answer:\n" in text
    fees.write_text(text.replace("    answer:\n", "    anwser:\n", 1), encoding="utf-8")
    return copy


def test_kb_check_on_the_sample_knowledge_succeeds() -> None:
    status, output = run("kb", "check")

    assert status == 0
    assert "knowledge OK" in output
    # The sample's renovation notice ran until 2025-12-31: editors are told it has expired.
    assert "expired: filing-hall-temporary-relocation" in output


def test_kb_check_takes_the_folder_as_an_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICDESK_KNOWLEDGE", "/nonexistent/folder")

    status, output = run("kb", "check", str(KNOWLEDGE))

    assert status == 0
    assert "knowledge OK" in output


def test_kb_check_on_a_broken_copy_fails_with_file_and_line(clean_environment: Path) -> None:
    broken = broken_copy(clean_environment)

    status, output = run("kb", "check", str(broken))

    assert status == 1
    assert re.search(r"fees\.yaml:\d+: ", output)
    assert "anwser" in output
    assert "'answer'" in output  # the editor is told what was probably meant
    assert "knowledge OK" not in output


def test_kb_check_on_a_missing_folder_fails_and_names_the_setting() -> None:
    status, output = run("kb", "check", "no-such-folder")

    assert status == 1
    assert "no-such-folder" in output
    assert "CIVICDESK_KNOWLEDGE" in output


# --- eval ----------------------------------------------------------------------------------

EASY_SET = {
    "meta": {"name": "tiny-court"},
    "faqs": [
        {
            "id": "fee",
            "question": "How do I pay the court fee?",
            "answer": "Pay online or at the cashier window.",
            "lang": "en",
            "alt_questions": ["Where can I pay the court fee", "Can I pay the court fee online"],
        },
        {
            "id": "hours",
            "question": "What are the opening hours of the court?",
            "answer": "Monday to Friday, 9:00 to 17:00.",
            "lang": "en",
            "alt_questions": ["When is the court open"],
        },
        {
            "id": "appeal",
            "question": "How do I appeal a judgment?",
            "answer": "Hand in a notice of appeal within 15 days.",
            "lang": "en",
        },
    ],
    "queries": [
        {"text": "how do I pay the court fee", "faq_id": "fee", "lang": "en"},
        {"text": "what are the opening hours of the court", "faq_id": "hours", "lang": "en"},
        {"text": "how do I appeal a judgment", "faq_ids": ["appeal"], "lang": "en"},
        {"text": "what is the weather on mars tomorrow", "faq_id": None, "lang": "en"},
    ],
}


EASY_SET_PARTS = {"faqs": EASY_SET["faqs"], "queries": EASY_SET["queries"]}


def write_eval(folder: Path, data: object, name: str = "tiny.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_eval_prints_a_table_of_the_metrics(clean_environment: Path) -> None:
    path = write_eval(clean_environment, EASY_SET)

    status, output = run("eval", str(path))

    assert status == 0
    assert "tiny-court: 4 queries, 1 out of scope" in output
    assert "top1" in output
    assert "cov@P90" in output
    assert "civicdesk" in output


def test_eval_json_reports_perfect_top1_on_an_easy_set(clean_environment: Path) -> None:
    path = write_eval(clean_environment, EASY_SET)

    status, output = run("eval", str(path), "--json")

    assert status == 0
    result = json.loads(output)
    assert result["policy"]["answer_threshold"] == pytest.approx(PolicyConfig().answer_threshold)
    [report] = result["files"]
    assert report["file"] == "tiny-court"
    assert report["queries"] == 4
    assert report["out_of_scope"] == 1
    metrics = report["civicdesk"]
    assert metrics["top1"] == 1.0
    assert metrics["oos_answered"] == 0.0
    assert metrics["precision"] == 1.0
    assert {"cov@P90", "cov@P95", "coverage", "clarify_rate", "median_ms", "p99_ms"} <= set(metrics)


def test_eval_json_reports_each_file(clean_environment: Path) -> None:
    first = write_eval(clean_environment, EASY_SET, "a.json")
    second = write_eval(clean_environment, {**EASY_SET, "meta": {}}, "second-set.json")

    status, output = run("eval", str(first), str(second), "--json")

    assert status == 0
    assert [f["file"] for f in json.loads(output)["files"]] == ["tiny-court", "second-set"]


def test_eval_with_baselines_adds_the_rapidfuzz_rows(clean_environment: Path) -> None:
    path = write_eval(clean_environment, EASY_SET)

    status, output = run("eval", str(path), "--baselines", "--json")

    assert status == 0
    report = json.loads(output)["files"][0]
    assert "rapidfuzz WRatio" in report
    assert 0.0 <= report["rapidfuzz WRatio"]["top1"] <= 1.0


@pytest.mark.parametrize(
    "content",
    [
        "this is not json",
        json.dumps({"faqs": EASY_SET["faqs"]}),  # no queries
        json.dumps({"faqs": [{"id": "x"}], "queries": []}),  # a FAQ without its question
        json.dumps([1, 2, 3]),
    ],
    ids=["not-json", "no-queries", "no-question", "a-list"],
)
def test_a_malformed_eval_file_fails_with_a_clear_message(
    clean_environment: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    path = clean_environment / "broken.json"
    path.write_text(content, encoding="utf-8")

    status, output = run("eval", str(path))

    assert status == 1
    assert output == ""
    error = capsys.readouterr().err
    assert "broken.json" in error
    assert "not an evaluation file" in error


def test_a_missing_eval_file_fails_with_a_clear_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _ = run("eval", "missing.json")

    assert status == 1
    assert "missing.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"faqs": ["How do I pay the court fee?"], "queries": []}, "faqs[0] must be an object"),
        (
            {"meta": None, "faqs": EASY_SET["faqs"], "queries": EASY_SET["queries"]},
            "meta must be an object, not missing or null",
        ),
        ({"meta": "tiny", **EASY_SET_PARTS}, "meta must be an object"),
        ({"meta": {"name": 7}, **EASY_SET_PARTS}, "meta.name must be text"),
        ({"faqs": {"fee": "How do I pay?"}, "queries": []}, "faqs must be a list, not an object"),
        ({"faqs": EASY_SET["faqs"], "queries": "none"}, "queries must be a list"),
        ({"faqs": EASY_SET["faqs"], "queries": [None]}, "queries[0] must be an object"),
        (
            {"faqs": [{**EASY_SET["faqs"][0], "alt_questions": "Where do I pay"}], "queries": []},
            "faqs[0].alt_questions must be a list",
        ),
        (
            {"faqs": [{**EASY_SET["faqs"][0], "id": ["fee"]}], "queries": []},
            "faqs[0].id must be a text or number id",
        ),
        (
            {"faqs": EASY_SET["faqs"], "queries": [{"text": "fee?", "faq_ids": "fee"}]},
            "queries[0].faq_ids must be a list",
        ),
    ],
    ids=[
        "faq-is-a-string",
        "meta-is-null",
        "meta-is-a-string",
        "name-is-a-number",
        "faqs-is-an-object",
        "queries-is-a-string",
        "query-is-null",
        "alt-questions-is-a-string",
        "id-is-a-list",
        "faq-ids-is-a-string",
    ],
)
def test_a_wrongly_shaped_eval_file_is_a_clear_error_not_a_traceback(
    clean_environment: Path, capsys: pytest.CaptureFixture[str], data: object, where: str
) -> None:
    path = write_eval(clean_environment, data, "shape.json")

    status, output = run("eval", str(path))

    assert status == 1
    assert output == ""
    error = capsys.readouterr().err
    assert "shape.json" in error
    assert where in error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (
            {**EASY_SET, "queries": [{"text": 12368, "faq_id": "fee"}]},
            "queries[0].text must be text, not the number 12368",
        ),
        (
            {**EASY_SET, "queries": [*EASY_SET["queries"], {"text": None, "faq_id": "fee"}]},
            f"queries[{len(EASY_SET['queries'])}].text must be text, not missing or null",
        ),
        (
            {**EASY_SET, "faqs": [*EASY_SET["faqs"], {"id": "x", "question": ["a", "b"]}]},
            f"faqs[{len(EASY_SET['faqs'])}].question must be text, not a list",
        ),
        (
            {**EASY_SET, "faqs": [{**EASY_SET["faqs"][0], "alt_questions": ["ok", 3]}]},
            "faqs[0].alt_questions[1] must be text, not the number 3",
        ),
    ],
    ids=["query-number", "query-null", "question-list", "alt-question-number"],
)
def test_an_eval_query_or_question_that_is_not_text_is_a_clear_error(
    clean_environment: Path, capsys: pytest.CaptureFixture[str], data: object, where: str
) -> None:
    path = write_eval(clean_environment, data, "number.json")

    status, output = run("eval", str(path))

    assert status == 1
    assert output == ""
    error = capsys.readouterr().err
    assert "number.json" in error
    assert where in error


def test_null_optional_fields_of_an_eval_file_are_read_as_absent(clean_environment: Path) -> None:
    faqs = [
        {**faq, "alt_questions": None, "answer": None, "lang": None} for faq in EASY_SET["faqs"]
    ]
    queries = [{"faq_ids": None, **query} for query in EASY_SET["queries"]]
    path = write_eval(clean_environment, {**EASY_SET, "faqs": faqs, "queries": queries})

    status, output = run("eval", str(path), "--json")

    assert status == 0
    assert json.loads(output)["files"][0]["out_of_scope"] == 1


# --- the module entry point ----------------------------------------------------------------


def test_python_dash_m_bot_runs_the_command_line(clean_environment: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CIVICDESK_")}
    env["CIVICDESK_KNOWLEDGE"] = str(KNOWLEDGE)

    completed = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "how do I pay the court fee", "--json"],
        cwd=clean_environment,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr.decode("utf-8", "replace")
    result = json.loads(completed.stdout.decode("utf-8"))
    assert result["decision"] == "answer"
    assert result["entry_id"] == "pay-court-fee"


def test_python_dash_m_bot_reports_usage_errors_with_status_2(clean_environment: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bot", "frobnicate"],
        cwd=clean_environment,
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 2
    assert b"usage" in completed.stderr


# --- a reader that stops reading (`civicdesk ask ... | head`) ------------------------------


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize(
    "argv",
    [("ask", "诉讼费怎么交"), ("ask", "诉讼费怎么交", "--json"), ("kb", "check")],
    ids=["ask", "ask-json", "kb-check"],
)
def test_output_to_a_closed_pipe_ends_quietly_with_status_1(argv: tuple[str, ...]) -> None:
    assert main(list(argv), out=ClosedPipe()) == 1


@pytest.mark.parametrize("argv", [("ask", "诉讼费怎么交"), ("kb", "check")], ids=["ask", "kb"])
def test_civicdesk_piped_into_a_reader_that_quits_prints_no_traceback(
    clean_environment: Path, argv: tuple[str, ...]
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CIVICDESK_")}
    env["CIVICDESK_KNOWLEDGE"] = str(KNOWLEDGE)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *argv],
        cwd=clean_environment,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` that has read what it wanted, before civicdesk writes

    stderr = process.stderr.read().decode("utf-8", "replace")
    status = process.wait(timeout=120)

    assert status == 1
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr
    assert stderr == ""
