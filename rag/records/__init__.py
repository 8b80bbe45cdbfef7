"""The records that flow between the pipeline's stages, in one place (this package).

A module that needs :class:`Passage` imports it from here, not from the retriever (which
would bring the store and FAISS with it). All records are frozen dataclasses.

- :class:`Document`: one loaded article (``rag.documents``).
- :class:`Chunk`: a span of a document, embedded and retrieved as a unit (``rag.chunking``).
- :class:`Passage`: a retrieved chunk with its citation number and scores (``rag.retrieval``).
- :class:`Citation`, :class:`CitationCheck`, :class:`SentenceCheck`, :class:`Verification`:
  what an answer cites and how well each cited passage supports it (``rag.answering.citations``).
- :class:`Answer`: the answer with its evidence (``rag.pipeline``).
- :class:`Manifest` (with :class:`ManifestDocument`, :class:`NearDuplicate` and
  :class:`SkippedFile`): what an index generation holds and how it was built (``rag.store``).
- :class:`Calibration`: a "not covered" threshold calibrated for one index (``rag calibrate``).
"""

from .answers import Answer, Citation, CitationCheck, SentenceCheck, Verification, pages_label
from .calibration import Calibration
from .content import Chunk, Document, Evidence, Passage
from .manifest import Manifest, ManifestDocument, NearDuplicate, SkippedFile

__all__ = [
    "Document",
    "Chunk",
    "Passage",
    "Evidence",
    "Citation",
    "CitationCheck",
    "SentenceCheck",
    "Verification",
    "Answer",
    "pages_label",
    "SkippedFile",
    "ManifestDocument",
    "NearDuplicate",
    "Manifest",
    "Calibration",
]
