"""Local, grounded Q&A over a folder of articles, with cited answers.

Example:
    >>> from rag import RAG
    >>> rag = RAG.from_config("configs/default.yaml")
    >>> rag.build("data/articles")
    >>> print(rag.ask("Who released DeepSeek-R1?").text)
"""

from .chunking import Chunker
from .answering.citations import parse_markers, resolve_citations
from .config import Config, ConfigError
from .conversation import Conversation
from .rewriting import QueryRewriter, Rewrite, Turn, heuristic_rewrite, is_follow_up
from .documents import DEFAULT_EXTENSIONS, LoadResult, SkippedFile, load_documents
from .errors import InputError, RagError
from .embedding import Embedder, OnnxEmbedder, SentenceTransformerEmbedder, make_embedder
from .answering.evidence import SUPPORT_LABEL, EvidenceSet, evidence_answer, extractive_answer, select_evidence
from .generation import (
    BACKENDS,
    AnswerStream,
    Generator,
    GeneratorError,
    LlamaCppGenerator,
    NullGenerator,
    OpenAIGenerator,
    ThinkSplitter,
    TransformersGenerator,
    make_generator,
    split_reasoning,
)
from .feedback import FeedbackLog, export_disliked, feedback_record
from .indexing import BuildLockedError, DiskFullError, IndexBuilder, NearDuplicate, remove_article
from .indexing import BuildError
from .models import FALLBACK_WARNING, ModelInUse, model_in_use
from .pipeline import RAG, BuildSummary, StreamEvent
from .answering.verification import CitationVerifier
from .answering.prompting import NOT_FOUND, build_prompt
from .records import (
    Answer,
    Chunk,
    Citation,
    CitationCheck,
    Document,
    Evidence,
    Passage,
    SentenceCheck,
    Verification,
    pages_label,
)
from .retrieval import BM25Retriever, DenseRetriever, HybridRetriever, MetadataFilter, Retriever, make_retriever
from .store import IndexCorruptError, IndexMismatchError, IndexNotFoundError, IndexStore

__version__ = "0.1.0"

__all__ = [
    "RAG",
    "FALLBACK_WARNING",
    "ModelInUse",
    "model_in_use",
    "Conversation",
    "InputError",
    "RagError",
    "Answer",
    "AnswerStream",
    "CitationCheck",
    "CitationVerifier",
    "SentenceCheck",
    "Verification",
    "LlamaCppGenerator",
    "NullGenerator",
    "OpenAIGenerator",
    "extractive_answer",
    "SUPPORT_LABEL",
    "EvidenceSet",
    "evidence_answer",
    "select_evidence",
    "Evidence",
    "make_generator",
    "BACKENDS",
    "BuildError",
    "BuildSummary",
    "BuildLockedError",
    "DiskFullError",
    "IndexBuilder",
    "NearDuplicate",
    "remove_article",
    "Chunk",
    "Chunker",
    "Citation",
    "Config",
    "ConfigError",
    "BM25Retriever",
    "DenseRetriever",
    "HybridRetriever",
    "MetadataFilter",
    "make_retriever",
    "Document",
    "Embedder",
    "Generator",
    "GeneratorError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexStore",
    "LoadResult",
    "NOT_FOUND",
    "Passage",
    "QueryRewriter",
    "Rewrite",
    "Retriever",
    "SentenceTransformerEmbedder",
    "OnnxEmbedder",
    "make_embedder",
    "SkippedFile",
    "StreamEvent",
    "ThinkSplitter",
    "TransformersGenerator",
    "Turn",
    "build_prompt",
    "heuristic_rewrite",
    "is_follow_up",
    "load_documents",
    "parse_markers",
    "resolve_citations",
    "split_reasoning",
    "pages_label",
    "DEFAULT_EXTENSIONS",
    "FeedbackLog",
    "export_disliked",
    "feedback_record",
]
