"""What the tests share, in one place: test modules import from here, never from each other.

- ``files``: bytes on disk (``write``, ``truncated``: any file cut short)
- ``pdfs``: PDFs, healthy, unusual and hostile, built from the samples with pypdf and zlib
- ``officefiles``: office files (python-docx, python-pptx, openpyxl, LibreOffice) and hostile ones
- ``xlsb``: a minimal binary Excel workbook, written record by record ([MS-XLSB])
- ``textfiles``: text, Markdown, HTML, CSV/TSV, JSON and XML, in any encoding, and hostile ones
- ``mailfiles``: e-mails (.eml by the stdlib, Outlook .msg by aspose-email-foss) and hostile ones
- ``images``: pictures: EXIF orientation, 16-bit, palettes, frames, decompression bombs
- ``corpus``: pages whose words only one page has, and the questions they answer
- ``vectors``: page embeddings made up for the index tests, and adding them as a document
- ``index``: the checks a restarted app's index must pass (whole, searchable documents)
- ``processes``: the app's CLI as a real process, started and killed; waiting for a condition
- ``web``: a web server that notes every path asked of it (proof that nothing was fetched)
- ``servers``: the real app served on 127.0.0.1, and the gradio_client calls the tests share
- ``library``: a served library of two indexed samples behind an API key (/v1 and MCP tests)
- ``chatserver``: an OpenAI chat API server in a thread, answering as a test scripts it
- ``tiers``: which families of a per-family test run in the fast tier
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
