"""Answering: from retrieved passages to the answer a reader sees (the lead, then the articles' words).

- :mod:`rag.answering.asked`: what a question asks for (number, date, name, place, expansion,
  definition) and where a sentence gives it.
- :mod:`rag.answering.evidence`: the sentences that answer, best first, and the answerability score.
- :mod:`rag.answering.prompting`: the evidence-first prompt the model writes its draft from.
- :mod:`rag.answering.verification`, :mod:`rag.answering.facts`, :mod:`rag.answering.citations`:
  is the draft faithful (each sentence supported by the passage it cites, its names and numbers
  there), and its ``[n]`` markers.
- :mod:`rag.answering.lead`: is a faithful draft responsive; the evidence lead otherwise.
- :mod:`rag.answering.draft`: the draft decision (the ``evidence.draft_must_*`` rules).
- :mod:`rag.answering.declining`: whether a question is declined before the model is called.

:mod:`rag.pipeline` only orchestrates these steps.
"""
