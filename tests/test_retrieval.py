"""Tests for rag/retrieval/: dense/BM25/hybrid retrieval, RRF, de-duplication, neighbours, filters, the threshold."""

from __future__ import annotations

import pytest
from conftest import write_articles
from fakes import FakeEmbedder, FakeGenerator

from rag import RAG, Config, ConfigError
from rag.retrieval import (
    NOT_COVERED,
    BM25Retriever,
    DenseRetriever,
    HybridRetriever,
    MetadataFilter,
    Passage,
    Retriever,
    aggregate_articles,
    convex_score_fusion,
    make_retriever,
    reciprocal_rank_fusion,
)
from rag.store import Hit


def make_rag(tmp_path, embedder=None, generator=None, **overrides):
    cfg = Config.load(None, {"index.path": str(tmp_path / "index"), **overrides})
    return RAG(cfg, embedder=embedder or FakeEmbedder(), generator=generator or FakeGenerator())


# -- reciprocal-rank fusion ------------------------------------------------------------------
def test_rrf_matches_hand_worked_example():
    """rankings [a, b, c] (weight 1) and [c, a, d] (weight 0.5), k = 1:

    a: 1/(1+1) + 0.5/(1+2) = 0.5 + 0.1667 = 0.6667
    b: 1/(1+2)             = 0.3333
    c: 1/(1+3) + 0.5/(1+1) = 0.25 + 0.25 = 0.5
    d:           0.5/(1+3) = 0.125
    """
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]], weights=[1.0, 0.5], k=1)
    assert [item for item, _ in fused] == ["a", "c", "b", "d"]
    assert [s for _, s in fused] == pytest.approx([2 / 3, 0.5, 1 / 3, 0.125])


def test_rrf_default_k_60_and_equal_weights():
    fused = dict(reciprocal_rank_fusion([[1, 2], [2, 3]]))
    assert fused == pytest.approx({1: 1 / 61, 2: 1 / 62 + 1 / 61, 3: 1 / 62})


def test_rrf_ties_keep_first_appearance_and_bad_weights_raise():
    assert [i for i, _ in reciprocal_rank_fusion([["x"], ["y"]])] == ["x", "y"]
    with pytest.raises(ValueError, match="2 weights for 1 rankings"):
        reciprocal_rank_fusion([["x"]], weights=[1, 1])


# -- convex score fusion and article aggregation --------------------------------------------
def test_convex_fusion_matches_hand_worked_example():
    """dense [1: 0.8, 2: 0.6, 3: 0.2] -> min-max [1, 0.667, 0]; bm25 [3: 9, 4: 5, 1: 1] -> [1, 0.5, 0];
    dense_share 0.75:

    1: 0.75 * 1     + 0.25 * 0   = 0.75
    2: 0.75 * 0.667 + 0          = 0.5
    3: 0.75 * 0     + 0.25 * 1   = 0.25
    4: 0            + 0.25 * 0.5 = 0.125
    """
    fused = convex_score_fusion([(1, 0.8), (2, 0.6), (3, 0.2)], [(3, 9.0), (4, 5.0), (1, 1.0)], dense_share=0.75)
    assert [i for i, _ in fused] == [1, 2, 3, 4]
    assert [s for _, s in fused] == pytest.approx([0.75, 0.5, 0.25, 0.125])


def test_convex_fusion_sees_score_gaps_where_rrf_sees_ranks():
    """A chunk far ahead on cosine keeps first place under convex fusion; RRF lets BM25's favourite win."""
    dense = [(1, 0.9), (2, 0.41), (3, 0.40)]
    bm25 = [(2, 10.0), (3, 9.9), (1, 9.8)]
    assert convex_score_fusion(dense, bm25, 0.9)[0][0] == 1
    assert reciprocal_rank_fusion([[1, 2, 3], [2, 3, 1]])[0][0] == 2
    with pytest.raises(ValueError, match="dense_share must be between 0 and 1, got 1.5"):
        convex_score_fusion(dense, bm25, 1.5)


def test_article_aggregation_lifts_an_article_matching_in_several_chunks():
    """Rows 1 (article a) 0.9; rows 2, 3, 4 (article b) 0.85, 0.8, 0.8; row 5 (c) 0.5 -> normalised
    a: 1.0; b: 0.875, 0.75, 0.75; c: 0. With weight 0.5, row 2 gains 0.5 * (0.75 + 0.75 + 0) / 3 = 0.25
    -> 1.125, rows 3 and 4 gain 0.5 * (0.875 + 0.75) / 3 = 0.271 -> 1.021: all pass row 1 (no other
    chunk of a: stays 1.0)."""
    hits = [Hit(1, 0.9, 0.9), Hit(2, 0.85, 0.85), Hit(3, 0.8, 0.8), Hit(4, 0.8, 0.8), Hit(5, 0.5, 0.5)]
    docs = ["a", "b", "b", "b", "c"]
    out = aggregate_articles(hits, docs, 0.5)
    assert [h.row for h in out] == [2, 3, 4, 1, 5]
    assert [h.score for h in out] == pytest.approx([1.125, 0.75 + 1.625 / 6, 0.75 + 1.625 / 6, 1.0, 0.0])
    assert out[0].relevance == 0.85  # the question-independent relevance is kept for the threshold
    assert [h.row for h in aggregate_articles(hits, docs, 0.0)] == [1, 2, 3, 4, 5]


def test_hybrid_default_is_convex_fusion_from_the_config():
    cfg = Config.load(None)
    assert (cfg.retrieval.fusion, cfg.retrieval.dense_share) == ("convex", 0.9)
    with pytest.raises(ConfigError, match="retrieval.fusion must be one of convex, rrf, got 'rank'"):
        Config.load(None, {"retrieval.fusion": "rank"})


# -- the three retrievers on a real FAISS + BM25 index (fake embedder) --------------------
@pytest.fixture
def built(tmp_path, articles_dir):
    rag = make_rag(tmp_path)
    rag.build(articles_dir)
    return rag


def test_retrievers_fit_the_protocol(built):
    for name in ("dense", "bm25", "hybrid"):
        assert isinstance(make_retriever(built.config.retrieval, built.index(), built.embedder, name), Retriever)


def test_dense_matches_brute_force_cosine(built):
    query = "Nvidia share price fell"
    chunks = list(built.index().iter_chunks())
    emb = built.embedder
    # What is embedded is the chunk's indexed_text (title, heading path, text).
    expected = sorted(((float(emb.vector(c.indexed_text) @ emb.vector(query)), c.source) for c in chunks), reverse=True)
    got = DenseRetriever(built.index(), emb).retrieve(query, 3)
    assert [p.source for p in got] == [s for _, s in expected]
    assert [p.score for p in got] == pytest.approx([s for s, _ in expected], abs=1e-5)
    assert [p.relevance for p in got] == pytest.approx([p.score for p in got])


def test_bm25_ranks_by_keyword_and_returns_only_matching_chunks(built):
    got = BM25Retriever(built.index()).retrieve("sourdough starter", 3)
    assert [p.source for p in got] == ["bread.html"]  # the other articles share no word
    assert 0 < got[0].relevance < 1 and got[0].score > got[0].relevance


def test_hybrid_fuses_and_reports_cosine_relevance(built):
    idx = built.index()
    dense = DenseRetriever(idx, built.embedder).retrieve("DeepSeek R1 reasoning model licence", 3)
    bm25 = BM25Retriever(idx).retrieve("DeepSeek R1 reasoning model licence", 3)
    hybrid = HybridRetriever(idx, built.embedder, fusion="rrf", rrf_k=60).retrieve(
        "DeepSeek R1 reasoning model licence", 3
    )
    assert hybrid[0].source == "r1.md" == dense[0].source == bm25[0].source
    expected = {s: 1 / (60 + i + 1) for i, s in enumerate(p.source for p in dense)}
    for i, p in enumerate(bm25):
        expected[p.source] = expected.get(p.source, 0) + 1 / (60 + i + 1)
    assert {p.source: p.score for p in hybrid} == pytest.approx(expected)
    cos = {p.source: p.score for p in dense}
    assert {p.source: p.relevance for p in hybrid} == pytest.approx(cos, abs=1e-5)


def test_hybrid_weights_change_the_order(built):
    """With all weight on BM25 the fused order is BM25's; with all on dense, dense's."""
    idx, q = built.index(), "Nvidia DeepSeek launch"
    dense = [p.source for p in DenseRetriever(idx, built.embedder).retrieve(q, 3)]
    bm25 = [p.source for p in BM25Retriever(idx).retrieve(q, 3)]
    rrf = dict(fusion="rrf")
    assert [
        p.source
        for p in HybridRetriever(idx, built.embedder, dense_weight=0, bm25_weight=1, **rrf).retrieve(q, len(bm25))
    ] == bm25
    assert [
        p.source for p in HybridRetriever(idx, built.embedder, dense_weight=1, bm25_weight=0, **rrf).retrieve(q, 3)
    ][: len(dense)] == dense
    assert [p.source for p in HybridRetriever(idx, built.embedder, dense_share=0.0).retrieve(q, len(bm25))] == bm25
    assert [p.source for p in HybridRetriever(idx, built.embedder, dense_share=1.0).retrieve(q, 3)][
        : len(dense)
    ] == dense


def test_top_k_larger_than_index_and_empty_query(built):
    """top_k above the chunk count returns every chunk once; an empty query returns nothing."""
    for name in ("dense", "bm25", "hybrid"):
        r = make_retriever(built.config.retrieval, built.index(), built.embedder, name)
        got = r.retrieve("DeepSeek bread Nvidia", 50)
        assert len(got) == len({p.chunk.id for p in got}) <= 3
        assert [p.n for p in got] == list(range(1, len(got) + 1))
        assert r.retrieve("   ", 3) == []
        with pytest.raises(ValueError, match="top_k must be >= 1, got 0"):
            r.retrieve("bread", 0)


def test_unknown_retriever_and_bad_config_name_the_choices(built):
    with pytest.raises(ValueError, match="unknown retriever 'colbert'; choose from"):
        built.retrieve("bread", 2, retriever="colbert")
    with pytest.raises(ConfigError, match="retrieval.retriever must be one of dense, bm25, hybrid"):
        Config.load(None, {"retrieval.retriever": "sparse"})
    with pytest.raises(ConfigError, match="retrieval.dedup must be one of"):
        Config.load(None, {"retrieval.dedup": "fuzzy"})


def test_a_retriever_registered_in_one_line_is_configured_built_and_asked(built, monkeypatch):
    """Guards against a hand-kept list of retrievers beside the registry: one RETRIEVERS line must be enough."""
    import rag.retrieval as retrieval

    class TitleRetriever(retrieval.RankedRetriever):
        """Toy: the chunks whose title holds a word of the question, in row order."""

        def _candidates(self, query, n, filters):
            words = {w.lower() for w in query.split()}
            chunks = self.index.chunks_by_rows(list(range(self.index.size)))
            return [Hit(row, 1.0, 1.0) for row, c in sorted(chunks.items()) if words & set(c.title.lower().split())][:n]

    monkeypatch.setitem(
        retrieval.RETRIEVERS,
        "title",
        lambda cfg, index, embedder: TitleRetriever(index, **retrieval.ranking_options(cfg)),
    )
    assert Config.load(None, {"retrieval.retriever": "title"}).retrieval.retriever == "title"
    passages = built.retrieve("sourdough", 2, retriever="title")
    assert [p.chunk.source for p in passages] == ["bread.html"]


# -- de-duplication ------------------------------------------------------------------------
DUPES = {
    "a.txt": "Mars rover news\n\nThe Mars rover Perseverance collected a rock sample in Jezero crater.",
    "b.txt": "Mars rover copy\n\nThe Mars rover Perseverance collected a rock sample in Jezero crater.",
    "c.txt": "Mars mission budget\n\nNASA plans the Mars sample return mission budget for the rover samples.",
}


def test_similarity_cut_drops_near_duplicates(tmp_path):
    folder = write_articles(tmp_path / "dupes", DUPES)
    # The copies' vectors have cosine 0.90 (their titles differ and are embedded too); c.txt's 0.71.
    rag = make_rag(tmp_path, **{"retrieval.dedup": "cut", "retrieval.dedup_threshold": 0.85})
    rag.build(folder)
    q = "Perseverance rock sample Jezero"
    plain = DenseRetriever(rag.index(), rag.embedder).retrieve(q, 2)
    assert {p.source for p in plain} == {"a.txt", "b.txt"}  # both copies crowd the top 2
    cut = rag.retrieve(q, 2, retriever="dense")
    assert len({p.source for p in cut} & {"a.txt", "b.txt"}) == 1 and "c.txt" in {p.source for p in cut}


def test_mmr_prefers_a_new_article_over_a_copy(tmp_path):
    folder = write_articles(tmp_path / "dupes", DUPES)
    rag = make_rag(tmp_path, **{"retrieval.dedup": "mmr", "retrieval.mmr_lambda": 0.3})
    rag.build(folder)
    # Dense: MMR weighs cosine against redundancy. (Convex hybrid scores are min-max
    # normalised over the candidates, so in a three-chunk index c.txt's is 0 and no lambda
    # above 0 brings it in; with the usual 50 candidates that floor is far below.)
    got = rag.retrieve("Perseverance rock sample Jezero", 2, retriever="dense")
    assert {p.source for p in got} == {"c.txt", got[0].source} and got[0].source in {"a.txt", "b.txt"}
    # lambda = 1 is pure relevance: both copies again.
    rag = make_rag(tmp_path, **{"retrieval.dedup": "mmr", "retrieval.mmr_lambda": 1.0})
    assert {p.source for p in rag.retrieve("Perseverance rock sample Jezero", 2, retriever="dense")} == {
        "a.txt",
        "b.txt",
    }
    assert {p.source for p in rag.retrieve("Perseverance rock sample Jezero", 2, retriever="hybrid")} == {
        "a.txt",
        "b.txt",
    }


# -- neighbour widening ----------------------------------------------------------------------
LONG = " ".join(
    f"Sentence number {w} talks about topic {w}."
    for w in ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
)


def test_neighbours_widen_a_hit_with_exact_offsets(tmp_path):
    folder = write_articles(tmp_path / "long", {"long.txt": "Phonetic alphabet\n\n" + LONG})
    rag = make_rag(
        tmp_path,
        **{
            "chunking.chunk_tokens": 16,
            "chunking.overlap_tokens": 0,
            "retrieval.neighbours": 1,
            "retrieval.neighbour_budget_tokens": 1000,
        },
    )
    rag.build(folder)
    narrow = BM25Retriever(rag.index()).retrieve("echo", 1)[0]
    wide = rag.retrieve("echo", 1, retriever="bm25")[0]
    chunks = sorted(rag.index().iter_chunks(), key=lambda c: c.start)
    i = [c.id for c in chunks].index(narrow.chunk.id)
    assert 0 < i < len(chunks) - 1, "the hit must have a neighbour on each side for this test"
    assert (wide.chunk.start, wide.chunk.end) == (chunks[i - 1].start, chunks[i + 1].end)
    assert chunks[i - 1].text in wide.text and chunks[i + 1].text in wide.text and "topic echo" in wide.text
    doc_text = "Phonetic alphabet\n\n" + LONG
    assert wide.text == doc_text[wide.chunk.start : wide.chunk.end]


def test_neighbour_budget_limits_widening(tmp_path):
    folder = write_articles(tmp_path / "long", {"long.txt": "Phonetic alphabet\n\n" + LONG})
    rag = make_rag(
        tmp_path,
        **{
            "chunking.chunk_tokens": 16,
            "chunking.overlap_tokens": 0,
            "retrieval.neighbours": 3,
            "retrieval.neighbour_budget_tokens": 0,
        },
    )
    rag.build(folder)
    narrow = BM25Retriever(rag.index()).retrieve("echo", 1)[0]
    assert rag.retrieve("echo", 1, retriever="bm25")[0].chunk == narrow.chunk


# -- metadata filters ------------------------------------------------------------------------
def test_filter_matches_dates_and_globs():
    f = MetadataFilter(since="2025-01-21", until="2025-01-31", source="markets/*")
    assert f.matches("markets/nvidia.txt", "2025-01-27")
    assert not f.matches("markets/nvidia.txt", "2025-01-20")  # before since
    assert not f.matches("markets/nvidia.txt", "2025-02-01")  # after until
    assert not f.matches("markets/nvidia.txt", None)  # undated: cannot be shown to be in range
    assert not f.matches("r1.md", "2025-01-27")
    assert MetadataFilter(source="*.md, *.html").matches("bread.html", None)
    assert MetadataFilter(source="feed.jsonl").matches("feed.jsonl#3", None)
    assert not MetadataFilter().active and MetadataFilter(source="  ").source is None


def test_filter_rejects_bad_dates_with_the_fix():
    with pytest.raises(ValueError, match=r"since must be a date like 2025-01-31, got 'last week'"):
        MetadataFilter(since="last week")
    with pytest.raises(ValueError, match="real calendar date"):
        MetadataFilter(until="2025-02-30")
    with pytest.raises(ValueError, match="is after until"):
        MetadataFilter(since="2025-03-01", until="2025-01-01")


@pytest.mark.parametrize("name", ["dense", "bm25", "hybrid"])
def test_filters_restrict_every_retriever(built, name):
    q = "DeepSeek Nvidia shares bread"
    by_source = built.retrieve(q, 3, retriever=name, filters=MetadataFilter(source="markets/*"))
    assert [p.source for p in by_source] == ["markets/nvidia.txt"]
    by_date = built.retrieve(q, 3, retriever=name, filters=MetadataFilter(since="2025-01-01", until="2025-01-25"))
    assert [p.source for p in by_date] == ["r1.md"]
    assert built.retrieve(q, 3, retriever=name, filters=MetadataFilter(since="2030-01-01")) == []


def test_ask_with_filters_and_no_match_never_calls_the_generator(built):
    gen = FakeGenerator(fail=AssertionError("generator must not be called"))
    built._generator = gen
    answer = built.ask("What happened to Nvidia?", filters=MetadataFilter(source="nothing/*"))
    assert answer.passages == [] and gen.calls == []


# -- relevance threshold: decline without the generator --------------------------------------
@pytest.mark.parametrize("name", ["dense", "bm25", "hybrid"])
def test_below_threshold_declines_lists_sources_and_skips_generator(tmp_path, articles_dir, name):
    gen = FakeGenerator(fail=AssertionError("generator must not be called"))
    rag = make_rag(tmp_path, generator=gen, **{"retrieval.retriever": name, f"retrieval.min_relevance_{name}": 0.99})
    rag.build(articles_dir)
    events = list(rag.stream_events("How much did Nvidia shares fall on 27 January?"))
    answer = events[-1].answer
    assert gen.calls == []
    assert answer.text.startswith(NOT_COVERED) and "markets/nvidia.txt" in answer.text
    assert "The closest sources are: Nvidia shares plunge after the DeepSeek launch (markets/nvidia.txt)" in answer.text
    assert answer.citations == [] and answer.passages  # the closest passages are still shown
    assert [e.kind for e in events] == ["retrieved", "answer", "done"]


def test_above_threshold_calls_the_generator(tmp_path, articles_dir):
    gen = FakeGenerator("Nvidia fell about 17 percent [1].")
    rag = make_rag(tmp_path, generator=gen, **{"retrieval.retriever": "dense", "retrieval.min_relevance_dense": 0.05})
    rag.build(articles_dir)
    answer = rag.ask("How much did Nvidia shares fall on 27 January?")
    assert len(gen.calls) == 1 and not answer.text.startswith(NOT_COVERED)


def test_threshold_is_per_retriever():
    cfg = Config.load(
        None, {"retrieval.min_relevance_dense": 0.5, "retrieval.min_relevance_bm25": 0.2, "retrieval.retriever": "bm25"}
    )
    assert cfg.retrieval.min_relevance_for() == 0.2
    assert cfg.retrieval.min_relevance_for("dense") == 0.5
    assert cfg.retrieval.min_relevance_for("hybrid") == 0.0  # unset, and no embedder named
    # Unset thresholds take the calibrated value of the embedder, and none for an uncalibrated one.
    default = Config().retrieval
    assert default.min_relevance_for("dense", "all-MiniLM-L6-v2") == 0.2
    assert default.min_relevance_for("hybrid", "fake-embedder") == 0.0
    assert default.min_relevance_for("bm25", "fake-embedder") == 0.17


def test_passage_relevance_defaults_to_score():
    p = Passage(n=1, chunk=None, score=0.3)  # type: ignore[arg-type]
    assert p.relevance_or_score == 0.3
    assert Passage(n=1, chunk=None, score=0.03, relevance=0.7).relevance_or_score == 0.7  # type: ignore[arg-type]


# -- real path: packaged MiniLM, real FAISS + BM25 index on disk --------------------------
@pytest.mark.slow
def test_real_embedder_hybrid_filters_and_threshold(tmp_path, articles_dir, real_embedder):
    gen = FakeGenerator(fail=AssertionError("generator must not be called"))
    rag = make_rag(
        tmp_path,
        embedder=real_embedder,
        generator=gen,
        **{"retrieval.retriever": "hybrid", "retrieval.min_relevance_hybrid": 0.3},
    )
    rag.build(articles_dir)
    assert (rag.index().path / "bm25" / "keyword.json").is_file()
    hits = rag.retrieve("How far did Nvidia's stock drop?", 3)
    assert hits[0].source == "markets/nvidia.txt" and hits[0].relevance > 0.3
    assert rag.retrieve("Who released R1?", 3, filters=MetadataFilter(until="2025-01-21"))[0].source == "r1.md"
    answer = rag.ask("What is the capital of Peru?")  # nothing in the articles is close
    assert answer.text.startswith(NOT_COVERED) and gen.calls == []
    assert max(p.relevance for p in answer.passages) < 0.3


# -- match bonuses (rag/retrieval/term_match.py) ---------------------------------------------------------
YEARS = {
    "a.txt": "Tesla results\n\nTesla revenue: Tesla reported record revenue for 2023, Tesla said.",
    "b.txt": "Carmaker results\n\nThe carmaker earned 10.4 billion in Q1 2021.",
    "c.txt": "Weather\n\nIt rained in Berlin all week.",
    "d.txt": "Bread\n\nA sourdough starter needs flour and water.",
}


def test_number_match_lifts_the_snippet_about_the_asked_year(tmp_path):
    """a.txt repeats the question's words but is about 2023; b.txt holds Q1 and 2021. Without the
    bonus a.txt wins (fused 1.0, b.txt 0.17 with the fake embedder); with weight 1 b.txt gains
    1 * 2/2 and a.txt 1 * 0/2, so b.txt leads with 1.17."""
    rag = make_rag(tmp_path)
    rag.build(write_articles(tmp_path / "years", YEARS))
    q = "Tesla revenue in Q1 2021"
    plain = HybridRetriever(rag.index(), rag.embedder, number_match_weight=0.0, date_match_weight=0.0).retrieve(q, 4)
    matched = HybridRetriever(rag.index(), rag.embedder, number_match_weight=1.0, date_match_weight=0.0).retrieve(q, 4)
    assert plain[0].source == "a.txt" and matched[0].source == "b.txt"
    before, after = {p.source: p.score for p in plain}, {p.source: p.score for p in matched}
    assert after["b.txt"] == pytest.approx(before["b.txt"] + 1.0)  # holds q1 and 2021
    assert after["a.txt"] == pytest.approx(before["a.txt"])  # holds neither
    assert {p.source: p.relevance for p in plain} == pytest.approx(
        {p.source: p.relevance for p in matched}
    )  # cosine, unchanged
    with pytest.raises(ValueError, match="number_match_weight must be >= 0"):  # checked once, at the config
        Config.load(None, {"retrieval.number_match_weight": -1})


def test_a_question_without_numbers_or_when_reads_no_chunk_for_the_bonus(tmp_path, monkeypatch):
    """The bonus would be 0 for every candidate, so the fused order stands without reading their texts."""
    rag = make_rag(tmp_path)
    rag.build(write_articles(tmp_path / "years", YEARS))
    index = rag.index()
    reads: list[int] = []
    real = index.chunks_by_rows
    monkeypatch.setattr(index, "chunks_by_rows", lambda rows: reads.append(len(rows)) or real(rows))
    retriever = HybridRetriever(index, rag.embedder, dedup="none")
    retriever.retrieve("Which carmaker reported revenue?", 2)
    assert reads == [2]  # only the two passages returned
    reads.clear()
    retriever.retrieve("Tesla revenue in Q1 2021", 2)
    assert len(reads) == 2 and reads[0] > 2  # the candidates' texts for the bonus, then the two returned


def test_match_weights_come_from_the_config(built):
    r = make_retriever(built.config.retrieval, built.index(), built.embedder, "hybrid")
    assert (r.number_match_weight, r.date_match_weight) == (0.3, 0.2)


# -- an exact match of rare words (HybridRetriever._keep_rare_match) ------------------------------
def test_an_exact_rare_term_match_leads_the_hybrid_ranking(built):
    """BM25's best hit matches 0.8 of the question's idf-weighted words, scores 3x its second and dense search ranks it
    6th: it goes first. Each condition failing leaves the fused order as it was."""
    r = HybridRetriever(built.index(), built.embedder, rare_match_relevance=0.5, rare_match_margin=1.5)
    dense = [Hit(row, 0.9 - row / 100, 0.9 - row / 100) for row in range(10)]  # rows 0..9, row 5 sixth
    fused = [(row, 1.0 - row / 100) for row in range(10)]
    sparse = [Hit(5, 9.0, 0.8), Hit(1, 3.0, 0.27)]
    assert [row for row, _ in r._keep_rare_match(dense, sparse, fused)][:3] == [5, 0, 1]
    assert r._keep_rare_match(dense, sparse, fused)[0][1] > fused[0][1]
    for weaker in (
        [Hit(5, 9.0, 0.4), Hit(1, 3.0, 0.27)],  # matches too little of the question
        [Hit(5, 9.0, 0.8), Hit(1, 7.0, 0.6)],
    ):  # no clear lead over BM25's second
        assert r._keep_rare_match(dense, weaker, fused) == fused
    agreeing = [Hit(5, 0.95, 0.95)] + [h for h in dense if h.row != 5]  # dense ranks it in its top 4 already
    assert r._keep_rare_match(agreeing, sparse, fused) == fused
    off = HybridRetriever(built.index(), built.embedder, rare_match_relevance=0.0)
    assert off._keep_rare_match(dense, sparse, fused) == fused


def test_rare_match_settings_come_from_the_config(built):
    r = make_retriever(
        built.config.retrieval.model_copy(update={"rare_match_relevance": 0.7, "rare_match_margin": 2.0}),
        built.index(),
        built.embedder,
        "hybrid",
    )
    assert (r.rare_match_relevance, r.rare_match_margin) == (0.7, 2.0)
    assert Config().retrieval.rare_match_relevance == 0.5
