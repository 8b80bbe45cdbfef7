"""Tests for rag/generation.py: <think> handling, the thinking budget, history stripping,
stop strings and the backend registry, with scripted fake generators; plus the pipeline's
use of them (reasoning never in Answer.text or citations, extractive fallback)."""

from __future__ import annotations

from collections.abc import Iterator

import re
import pytest

from fakes import FakeEmbedder, FakeGenerator
from rag import NOT_FOUND, RAG, Config, ConfigError
from rag.generation import (
    BACKENDS,
    BUDGET_NOTE,
    FINAL_ANSWER_REQUEST,
    THINK_CLOSE,
    AnswerStream,
    Generator,
    GeneratorError,
    NullGenerator,
    ThinkSplitter,
    cut_at_stop,
    make_generator,
    split_reasoning,
    strip_history_reasoning,
)

NVIDIA_ANSWER = "Nvidia shares fell about 17 percent on 27 January 2025 [1]."


class ScriptedReasoner:
    """An R1-style fake: streams ``script`` word by word, records every request.

    ``script`` may be a string or a function of (messages, call number). One token per word,
    so budgets can be asserted exactly. With ``continuation`` set, it declares
    ``can_continue`` (like the transformers and llama_cpp backends) and answers
    ``stream_continuation`` with that text.
    """

    supports_reasoning = True
    notice = ""

    def __init__(self, script, *, opens_think: bool = False, continuation: str | None = None) -> None:
        self.name = "scripted-reasoner"
        self.script = script
        self._opens_think = opens_think
        self.requests: list[dict] = []
        self.words_streamed = 0
        self.can_continue = continuation is not None
        self.continuation = continuation or ""

    context_window = 4096

    @property
    def opens_think_in_prompt(self) -> bool:
        return self._opens_think

    def warm_up(self) -> None:
        pass

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _words(self, text: str, max_new_tokens: int) -> Iterator[str]:
        for i, word in enumerate(text.split(" ")):
            if i >= max_new_tokens:
                return
            self.words_streamed += 1
            yield word if i == 0 else " " + word

    def stream(self, messages, *, max_new_tokens=256, temperature=0.0, stop=()) -> Iterator[str]:
        self.requests.append({"messages": messages, "max_new_tokens": max_new_tokens, "prefix": None})
        text = self.script(messages, len(self.requests)) if callable(self.script) else self.script
        yield from cut_at_stop(self._words(text, max_new_tokens), tuple(stop))

    def stream_continuation(self, messages, prefix, *, max_new_tokens=256, temperature=0.0, stop=()) -> Iterator[str]:
        self.requests.append({"messages": messages, "max_new_tokens": max_new_tokens, "prefix": prefix})
        yield from self._words(self.continuation, max_new_tokens)


MESSAGES = [{"role": "user", "content": "How much did Nvidia fall?"}]


def run_all(stream: AnswerStream) -> list:
    return list(stream)


# -- ThinkSplitter / split_reasoning ---------------------------------------------------------
@pytest.mark.parametrize("piece", [1, 2, 3, 7, 100])
def test_splitter_handles_tags_split_across_pieces(piece):
    """A tag cut in two by the stream must not leak '<thi' or 'nk>' into either part."""
    text = "<think>I should cite passage 1 [1].</think>Nvidia fell 17 percent [1]."
    splitter = ThinkSplitter()
    pieces = [p for i in range(0, len(text), piece) for p in splitter.feed(text[i : i + piece])] + splitter.flush()
    assert "".join(p.text for p in pieces if p.kind == "reasoning") == "I should cite passage 1 [1]."
    assert "".join(p.text for p in pieces if p.kind == "answer") == "Nvidia fell 17 percent [1]."


def test_split_reasoning_with_and_without_opening_tag():
    assert split_reasoning("<think>plan</think>\n\nAnswer [1].") == ("plan", "Answer [1].")
    # Templates that open <think> in the prompt: only </think> is generated.
    assert split_reasoning("plan</think>Answer [1].", starts_in_reasoning=True) == ("plan", "Answer [1].")
    # Even when nobody said so, a lone </think> marks what came before as reasoning.
    assert split_reasoning("plan</think>Answer [1].") == ("plan", "Answer [1].")
    assert split_reasoning("Plain answer [2].") == ("", "Plain answer [2].")


def test_cut_at_stop_holds_back_partial_matches():
    pieces = ["Nvidia fell [1].\nQues", "tion: what", " else?"]
    assert "".join(cut_at_stop(iter(pieces), ("Question:",))) == "Nvidia fell [1].\n"
    assert "".join(cut_at_stop(iter(["a", "b"]), ())) == "ab"


def test_strip_history_reasoning_only_touches_assistant_turns():
    messages = [
        {"role": "user", "content": "Q1 <think>user text stays</think>"},
        {"role": "assistant", "content": "<think>old plan [3]</think>\n\nOld answer [1]."},
        {"role": "assistant", "content": "opened by template</think>Second answer [2]."},
        {"role": "user", "content": "Q2"},
    ]
    out = strip_history_reasoning(messages)
    assert [m["content"] for m in out] == [
        "Q1 <think>user text stays</think>",
        "Old answer [1].",
        "Second answer [2].",
        "Q2",
    ]
    assert messages[1]["content"].startswith("<think>")  # the caller's list is not modified


# -- AnswerStream ---------------------------------------------------------------------------
def test_reasoning_with_opening_tag_is_split_off():
    gen = ScriptedReasoner("<think> The passage says 17 percent [2]. </think> " + NVIDIA_ANSWER)
    run = AnswerStream(gen, MESSAGES, max_new_tokens=100)
    pieces = run_all(run)
    assert run.reasoning == "The passage says 17 percent [2]."
    assert run.answer == NVIDIA_ANSWER
    assert {p.kind for p in pieces} == {"reasoning", "answer"}
    assert not run.continued and not run.budget_spent


def test_reasoning_without_opening_tag_when_template_opens_it():
    """R1 distills' newer templates end the prompt with <think>: the model only writes </think>."""
    gen = ScriptedReasoner("Passage 1 has the figure. </think> " + NVIDIA_ANSWER, opens_think=True)
    run = AnswerStream(gen, MESSAGES, max_new_tokens=100)
    run_all(run)
    assert run.reasoning == "Passage 1 has the figure."
    assert run.answer == NVIDIA_ANSWER


def test_late_close_tag_turns_streamed_text_into_reasoning():
    """The template opened <think> but the backend did not say so (e.g. an openai server):
    text streamed as answer before the </think> must end up as reasoning, not in the answer."""
    gen = ScriptedReasoner("Let me think about passage 2 [2] and the figure. </think> " + NVIDIA_ANSWER)
    run = AnswerStream(gen, MESSAGES, max_new_tokens=100, opens_think=False)
    run_all(run)
    assert run.answer == NVIDIA_ANSWER
    assert "passage 2 [2]" in run.reasoning and "[2]" not in run.answer


def test_thinking_budget_cuts_reasoning_and_continues_the_turn():
    """Budget spent: generation stops, </think> is written for the model and it answers."""
    endless = "<think> " + " ".join(f"step{i}" for i in range(1000))
    gen = ScriptedReasoner(endless, continuation=NVIDIA_ANSWER)
    run = AnswerStream(gen, MESSAGES, max_new_tokens=50, max_thinking_tokens=20)
    pieces = run_all(run)
    assert run.budget_spent and run.continued
    assert 20 <= run.thinking_tokens <= 22
    assert gen.words_streamed < 30 + len(NVIDIA_ANSWER.split()), "generation must stop once the budget is spent"
    first, second = gen.requests
    assert first["max_new_tokens"] == 50 + 20  # answer plus thinking budget
    assert second["prefix"].startswith("<think>\n") and second["prefix"].endswith(f"{BUDGET_NOTE}\n{THINK_CLOSE}\n\n")
    assert "step0" in second["prefix"] and second["max_new_tokens"] == 50
    assert run.answer == NVIDIA_ANSWER
    assert "step" not in "".join(p.text for p in pieces if p.kind == "answer")


def test_thinking_budget_with_template_opened_think_does_not_reopen_it():
    gen = ScriptedReasoner(" ".join(f"step{i}" for i in range(200)), opens_think=True, continuation=NVIDIA_ANSWER)
    run = AnswerStream(gen, MESSAGES, max_new_tokens=50, max_thinking_tokens=10)
    run_all(run)
    assert not gen.requests[1]["prefix"].startswith("<think>")
    assert run.answer == NVIDIA_ANSWER


def test_budget_without_continuation_asks_again_in_the_user_turn():
    """Backends that cannot continue a turn (openai) get the reasoning back with a request to answer."""

    def script(messages, call):
        if call == 1:
            return "<think> " + " ".join(f"step{i}" for i in range(500))
        return "<think> ok, answering now. </think> " + NVIDIA_ANSWER

    gen = ScriptedReasoner(script)
    run = AnswerStream(gen, MESSAGES, max_new_tokens=40, max_thinking_tokens=15)
    run_all(run)
    assert run.budget_spent and run.continued
    retry = gen.requests[1]["messages"][-1]["content"]
    assert retry.startswith(MESSAGES[-1]["content"]) and retry.endswith(FINAL_ANSWER_REQUEST) and "step0" in retry
    assert run.answer == NVIDIA_ANSWER
    assert "answering now" in run.reasoning and "step3" in run.reasoning


def test_reasoning_that_hits_the_token_limit_still_gets_an_answer():
    """No budget set: the reasoning ran into max_new_tokens; the answer must still come."""
    gen = ScriptedReasoner("<think> " + " ".join(f"step{i}" for i in range(500)), continuation=NVIDIA_ANSWER)
    run = AnswerStream(gen, MESSAGES, max_new_tokens=30)
    run_all(run)
    assert run.continued and not run.budget_spent
    assert run.answer == NVIDIA_ANSWER


def test_answer_is_capped_at_max_new_tokens_when_a_budget_is_set():
    """The first request may use answer + budget tokens; a model that does not reason must not use them all on the answer."""
    gen = ScriptedReasoner(" ".join(f"w{i}" for i in range(500)))
    run = AnswerStream(gen, MESSAGES, max_new_tokens=25, max_thinking_tokens=100)
    run_all(run)
    assert len(run.answer.split()) == 25


def test_close_stops_the_underlying_stream():
    gen = ScriptedReasoner(" ".join(f"w{i}" for i in range(1000)))
    run = AnswerStream(gen, MESSAGES, max_new_tokens=1000)
    for i, _ in enumerate(run):
        if i == 5:
            break
    run.close()
    assert gen.words_streamed <= 7


def test_previous_turns_reasoning_never_reaches_the_model():
    gen = ScriptedReasoner(NVIDIA_ANSWER)
    history = [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "<think>secret old plan</think>Old answer [1]."},
        *MESSAGES,
    ]
    run_all(AnswerStream(gen, history, max_new_tokens=50))
    assert "secret old plan" not in str(gen.requests[0]["messages"])


def test_bad_budget_is_named_at_the_config_edge():
    """The thinking budget is checked once, when the config loads; AnswerStream trusts it."""
    with pytest.raises(ConfigError, match=r"generation\.max_thinking_tokens must be >= 1, got 0"):
        Config.load(None, {"generation.max_thinking_tokens": 0})


# -- registry -------------------------------------------------------------------------------
def test_unknown_backend_lists_the_registry():
    with pytest.raises(ConfigError, match=r"generation.backend must be one of .*, got 'vllm'"):  # a typo fails at load
        Config.load(None, {"generation.backend": "vllm"})
    cfg = Config.load(None).generation.model_copy(update={"backend": "vllm"})  # past the config check
    assert {"llama_cpp", "llama_server", "none", "openai", "transformers"} <= set(BACKENDS)
    with pytest.raises(
        ConfigError, match=rf"unknown generation backend 'vllm'; choose from {re.escape(str(sorted(BACKENDS)))}$"
    ):
        make_generator(cfg)


def test_registry_builds_each_backend_cheaply():
    """Constructors load nothing: the openai backend makes no request, llama_cpp opens no file."""
    assert {"transformers", "llama_cpp", "openai", "none"} <= set(BACKENDS)
    cfg = Config.load(
        None,
        {
            "generation.backend": "openai",
            "generation.openai.base_url": "http://127.0.0.1:9/v1",
            "generation.model": "m",
        },
    ).generation
    gen = make_generator(cfg)
    assert gen.url == "http://127.0.0.1:9/v1/chat/completions" and gen.name == "m"
    llama = make_generator(Config.load(None, {"generation.backend": "llama_cpp"}).generation)
    assert llama._llm is None


def test_registry_default_backend_starts_no_process(tmp_path, monkeypatch):
    """The default llama_server backend is chosen (llama.cpp recorded as working) without starting its server."""
    pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python is not installed: pip install '.[llamacpp]' (CI installs it)"
    )
    from rag.generation import LlamaServerGenerator

    (tmp_path / "llama-build.json").write_text('{"ok": true}')
    monkeypatch.setenv("RAG_LLAMA_BUILD_STATUS", str(tmp_path / "llama-build.json"))
    gen = make_generator(Config.load(None, {"generation.llama_server.n_threads": 3}).generation)
    assert isinstance(gen, LlamaServerGenerator) and gen.pid is None and gen.log_path is None
    assert (gen.n_threads, gen.n_threads_batch, gen.gguf_type) == (3, 3, "q8_0")
    assert gen.can_continue is False and gen.notice == ""


def test_backend_options_name_the_bad_setting():
    """Each backend validates its own section when the config loads; the error names the nested key and the value."""
    with pytest.raises(
        ConfigError, match=r"generation\.llama_cpp\.gguf_type must be one of packaged, q8_0, q4_0, f16, got 'q5_k'"
    ):
        Config.load(None, {"generation.backend": "llama_cpp", "generation.llama_cpp.gguf_type": "q5_k"})
    with pytest.raises(
        ConfigError,
        match=r"unknown config key 'generation\.openai\.gguf_type'; valid keys here: \['api_key_env', 'base_url'",
    ):
        Config.load(None, {"generation.openai.gguf_type": "q8_0"})


def test_old_flat_backend_keys_still_load_into_every_backend_that_takes_them(tmp_path):
    """Guards against the nested layout breaking config files and --set overrides written for the flat one."""
    with pytest.warns(
        FutureWarning,
        match=r"generation\.gguf_type is deprecated; write generation\.llama_server\.gguf_type and "
        r"generation\.llama_cpp\.gguf_type",
    ):
        cfg = Config.load(None, {"generation.gguf_type": "q4_0", "generation.llama_cpp.gguf_type": "f16"}).generation
    assert (cfg.llama_server.gguf_type, cfg.llama_cpp.gguf_type) == ("q4_0", "f16"), "the nested value wins"
    from conftest import ROOT

    with pytest.warns(FutureWarning, match=r"generation\.gguf_type is deprecated"):  # README's eval command, old form
        cfg = Config.load(ROOT / "configs" / "default.yaml", {"generation.gguf_type": "packaged"}).generation
    assert cfg.llama_server.gguf_type == cfg.llama_cpp.gguf_type == "packaged", (
        "an override wins over the file's nested value"
    )
    old = tmp_path / "old.yaml"
    old.write_text("generation:\n  backend: openai\n  base_url: http://127.0.0.1:9/v1\n  retries: 0\n  timeout: 5\n")
    with pytest.warns(FutureWarning, match=r"generation\.retries is deprecated; write generation\.openai\.retries"):
        cfg = Config.load(old).generation
    assert cfg.options is cfg.openai and (cfg.openai.base_url, cfg.openai.retries, cfg.openai.timeout) == (
        "http://127.0.0.1:9/v1",
        0,
        5,
    )
    assert cfg.llama_server.timeout == 5, "timeout applied to both backends that take it, as it did before"
    gen = make_generator(cfg)
    assert (gen.base_url, gen.retries, gen.timeout) == ("http://127.0.0.1:9/v1", 0, 5.0)


def test_null_generator_raises_generator_error():
    with pytest.raises(GeneratorError, match="generation.backend: none"):
        list(NullGenerator().stream(MESSAGES))


# -- through the pipeline -------------------------------------------------------------------
def make_rag(tmp_path, generator, **overrides) -> RAG:
    # These tests are about the citation checker and reasoning; the draft's kept facts are tested in test_pipeline.py.
    cfg = Config.load(None, {"index.path": str(tmp_path / "index"), "evidence.draft_must_keep": "none", **overrides})
    return RAG(cfg, embedder=FakeEmbedder(), generator=generator)


def test_reasoning_never_leaks_into_answer_or_citations(tmp_path, articles_dir):
    """Markers and claims in the <think> part must not become answer text or citations."""
    gen = FakeGenerator(
        "<think>Maybe passage [3] about bread? No: passage [1], Nvidia fell 17 percent.</think>Nvidia shares fell about 17 percent [1]."
    )
    rag = make_rag(tmp_path, gen)
    rag.build(articles_dir)
    events = list(rag.stream_events("How much did Nvidia shares fall?"))
    answer = events[-1].answer
    assert answer.lead == "Nvidia shares fell about 17 percent [1]."
    assert [c.n for c in answer.citations] == [1] and answer.out_of_range == []
    assert "[3]" in answer.reasoning and "bread" not in answer.text
    assert "".join(e.text for e in events if e.kind == "answer") == answer.text
    assert all("bread" not in s.text for s in answer.checks)


def test_budget_cut_through_the_pipeline_gives_a_cited_answer(tmp_path, articles_dir):
    gen = ScriptedReasoner(
        "<think> " + " ".join(f"hmm{i}" for i in range(400)), continuation="Nvidia shares fell about 17 percent [1]."
    )
    rag = make_rag(tmp_path, gen, **{"generation.max_thinking_tokens": 12})
    rag.build(articles_dir)
    answer = rag.ask("How much did Nvidia shares fall?")
    assert answer.lead == "Nvidia shares fell about 17 percent [1]."
    assert answer.reasoning.startswith("hmm0") and "hmm" not in answer.text
    assert any("thinking budget of 12 tokens" in n for n in answer.notes)
    assert [c.source for c in answer.citations] == ["markets/nvidia.txt"]


def test_reasoning_only_output_falls_back_to_extractive(tmp_path, articles_dir):
    """A model that only reasons, even after being asked to answer, still leaves a non-empty answer."""
    gen = ScriptedReasoner(lambda messages, call: "<think> " + " ".join(f"hmm{i}" for i in range(300)))
    rag = make_rag(tmp_path, gen, **{"generation.max_thinking_tokens": 10})
    rag.build(articles_dir)
    answer = rag.ask("How much did Nvidia shares fall?")
    assert answer.extractive and answer.text.strip()
    assert "hmm" not in answer.text and "17 percent" in answer.text
    assert any("reasoned but gave no answer" in n for n in answer.notes)


def test_generator_error_falls_back_to_extractive(tmp_path, articles_dir):
    gen = FakeGenerator(fail=GeneratorError("cannot reach the server at http://127.0.0.1:1/v1"))
    rag = make_rag(tmp_path, gen)
    rag.build(articles_dir)
    events = list(rag.stream_events("How much did Nvidia shares fall?"))
    answer = events[-1].answer
    assert answer.extractive and answer.mode == "evidence" and answer.text.startswith(answer.lead) and answer.lead
    assert "Nvidia fell about 17 percent" in answer.text and answer.text.endswith("[1].") and "Date:" not in answer.text
    assert [e.kind for e in events] == ["retrieved", "answer", "done"]
    assert any("127.0.0.1:1" in n for n in answer.notes)
    assert answer.to_dict()["extractive"] is True


def test_fallback_error_mode_raises(tmp_path, articles_dir):
    rag = make_rag(tmp_path, FakeGenerator(fail=GeneratorError("server down")), **{"generation.fallback": "error"})
    rag.build(articles_dir)
    with pytest.raises(GeneratorError, match="server down"):
        rag.ask("How much did Nvidia shares fall?")


def test_backend_none_answers_extractively(tmp_path, articles_dir):
    cfg = Config.load(None, {"index.path": str(tmp_path / "index"), "generation.backend": "none"})
    rag = RAG(cfg, embedder=FakeEmbedder())
    rag.build(articles_dir)
    answer = rag.ask("Where is DeepSeek based?")
    assert answer.extractive and "Hangzhou" in answer.text
    assert answer.citations and answer.citations[0].source == "r1.md"


def test_other_crashes_are_not_hidden(tmp_path, articles_dir):
    """Only GeneratorError (model unavailable) falls back; a bug must still surface."""
    rag = make_rag(tmp_path, FakeGenerator(fail=RuntimeError("bug")))
    rag.build(articles_dir)
    with pytest.raises(RuntimeError, match="bug"):
        rag.ask("How much did Nvidia shares fall?")


def test_not_found_reply_gives_the_evidence_answer(tmp_path, articles_dir):
    """'Could not find' comes only from the answerability score, never from the small model."""
    rag = make_rag(tmp_path, FakeGenerator(NOT_FOUND))
    rag.build(articles_dir)
    answer = rag.ask("How much did Nvidia shares fall?")
    assert answer.mode == "evidence" and "17 percent" in answer.text and answer.draft == NOT_FOUND


# -- the DeepSeek-R1 preset --------------------------------------------------------------------
def test_r1_preset_follows_the_recommended_settings(tmp_path, articles_dir):
    from conftest import ROOT

    preset = ROOT / "configs" / "deepseek-r1-distill.yaml"
    cfg = Config.load(preset)
    gen_cfg = cfg.generation
    assert (gen_cfg.temperature, gen_cfg.use_system_prompt, gen_cfg.few_shot, gen_cfg.stop) == (0.6, False, False, ())
    assert gen_cfg.max_thinking_tokens and gen_cfg.max_thinking_tokens >= 256
    # Same index settings as the default config: one index serves both.
    default = Config.load(ROOT / "configs" / "default.yaml")
    assert (cfg.chunking, cfg.embedding.model, cfg.index) == (default.chunking, default.embedding.model, default.index)

    gen = ScriptedReasoner(
        "The Nvidia passage gives the figure.</think>\n\nNvidia shares fell about 17 percent [1].", opens_think=True
    )
    rag = RAG(
        Config.load(preset, {"index.path": str(tmp_path / "index"), "evidence.draft_must_keep": "none"}),
        embedder=FakeEmbedder(),
        generator=gen,
    )
    rag.build(articles_dir)
    answer = rag.ask("How much did Nvidia shares fall?")
    messages = gen.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["user"]  # no system prompt, no few-shot turns
    assert (
        messages[0]["content"].startswith("Answer the question in one short sentence")
        and "Evidence:\n[1] " in messages[0]["content"]
    )
    assert (
        answer.lead == "Nvidia shares fell about 17 percent [1]."
        and answer.reasoning == "The Nvidia passage gives the figure."
    )


# -- adding a backend: the worked example in CONTRIBUTING.md ---------------------------------
def _contributing_section() -> str:
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "CONTRIBUTING.md").read_text(encoding="utf-8")
    return doc.split("## Adding a generation backend", 1)[1].split("\n## ", 1)[0]


def contributing_example() -> dict:
    """Execute the backend file shown in CONTRIBUTING.md ("Adding a generation backend")."""
    code = _contributing_section().split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {"__name__": "rag.generation.quote"}
    exec(compile(code, "CONTRIBUTING.md", "exec"), namespace)
    return namespace


def test_contributing_example_backend_answers_through_rag(tmp_path, articles_dir, monkeypatch):
    """One file plus one registry line is a working backend with a setting of its own: chosen by name in
    the config, listed in the unknown-name error, its section validated by its Options at load, answering
    with a cited passage through RAG."""
    QuoteGenerator = contributing_example()["QuoteGenerator"]
    monkeypatch.setitem(BACKENDS, "quote", QuoteGenerator)  # the one registry line
    with pytest.raises(ConfigError, match=r"generation.backend must be one of .*quote.*, got 'nope'"):
        Config.load(None, {"generation.backend": "nope"})  # the registry names the choices, the new one included
    with pytest.raises(ConfigError, match=r"generation\.quote\.max_words must be >= 1, got 0"):
        Config.load(None, {"generation.backend": "quote", "generation.quote.max_words": 0})
    my_yaml = tmp_path / "my.yaml"  # the config file CONTRIBUTING shows
    my_yaml.write_text(_contributing_section().split("```yaml\n", 1)[1].split("```", 1)[0], encoding="utf-8")
    cfg = Config.load(my_yaml, {"index.path": str(tmp_path / "index")})
    assert (cfg.generation.backend, cfg.generation.quote.max_words) == ("quote", 40)
    rag = RAG(cfg, embedder=FakeEmbedder())
    rag.build(articles_dir)
    answer = rag.ask("By how much did Nvidia's share price fall on 27 January 2025?")
    assert isinstance(rag.generator, QuoteGenerator) and isinstance(rag.generator, Generator)
    assert rag.generator.max_words == 40, "the backend's own setting reaches its constructor"
    assert answer.mode == "generated" and "17 percent" in answer.text and answer.text.endswith("[1].")
    short = Config.load(my_yaml, {"generation.quote.max_words": 2}).generation  # the override CONTRIBUTING shows
    evidence = [{"role": "user", "content": "Evidence:\n[2] It rained all day.\n\nQuestion: Did it rain?"}]
    assert "".join(make_generator(short).stream(evidence)) == "It rained ... [2]."
    assert [c.source for c in answer.citations] == ["markets/nvidia.txt"]
