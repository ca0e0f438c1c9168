"""A corpus for the text side of retrieval: every page holds facts no other page has (codes,
names, amounts), and each question's answer sits on one page.

    python -m tests.helpers.corpus OUT_DIR    writes facts.pdf (a text layer), scan.pdf (images)

``facts.pdf`` is drawn with matplotlib, so its words are a real text layer; ``scan.pdf`` holds
the same kind of pages as pictures only (a scan), which only OCR can read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages
from PIL import Image, ImageDraw, ImageFont

A4 = (8.27, 11.69)
METADATA = {"Creator": "tests/helpers/corpus.py", "Producer": None, "CreationDate": None}

# (title, lines) per page; each page's facts appear nowhere else.
PAGES = [
    (
        "Invoice",
        ["Invoice number INV-2024-0173", "Customer: Halvorsen Marine AS", "Total 4,812.50 EUR"],
    ),
    ("Purchase order", ["Order PO-88213", "Supplier: Quintero Hermanos", "Part number XK-4471-B"]),
    (
        "Travel claim",
        ["Claim TC-5520", "Traveller: Ingrid Vasquez-Lund", "Approved by Tomasz Wierzbicki"],
    ),
    ("Shipping note", ["Tracking 1Z999AA10123456784", "Carrier: Oduya Logistics", "Weight 38 kg"]),
    ("Warranty", ["Serial SN-7Q4-22981", "Product: Thermocouple probe TP-310", "Valid until 2029"]),
    (
        "Meeting minutes",
        ["Project codename Bluefinch", "Chaired by Aurelie Marchetti", "Budget 275,000 EUR"],
    ),
]
# Each question, and the 1-based page that answers it.
QUESTIONS = [
    ("What is the total of invoice INV-2024-0173?", 1),
    ("Who supplies part XK-4471-B?", 2),
    ("Who approved the claim of Ingrid Vasquez-Lund?", 3),
    ("Which carrier ships tracking number 1Z999AA10123456784?", 4),
    ("Until when is serial SN-7Q4-22981 under warranty?", 5),
    ("What is the budget of project Bluefinch?", 6),
]
# The scan: pictures of text; each question's answer on one page.
SCAN_PAGES = [
    ["RECEIPT R-40917", "Paid by Marguerite Olsztyn", "Amount 912 EUR"],
    ["DELIVERY D-66120", "Received by Kwabena Asante", "Pallets 14"],
]
SCAN_QUESTIONS = [("Who paid receipt R-40917?", 1), ("Who received delivery D-66120?", 2)]


def write_facts(path: Path, pages: list[tuple[str, list[str]]] = PAGES) -> Path:
    """A PDF of ``pages`` (title, lines), each drawn as a real text layer."""
    with PdfPages(path, metadata=METADATA) as pdf:
        for title, lines in pages:
            figure = plt.figure(figsize=A4)
            figure.text(0.08, 0.92, title, fontsize=22, weight="bold")
            for row, line in enumerate(lines):
                figure.text(0.08, 0.85 - row * 0.04, line, fontsize=14)
            pdf.savefig(figure)
            plt.close(figure)
    return path


def write_page(path: Path, title: str, lines: list[str]) -> Path:
    """A one-page PDF whose text layer holds ``title`` and ``lines`` (facts of one's own)."""
    return write_facts(path, [(title, lines)])


def write_scan(path: Path) -> Path:
    """Pages that are only pictures of text (150 DPI A4), as a scanner makes them."""
    font = ImageFont.load_default(size=36)
    images = []
    for lines in SCAN_PAGES:
        image = Image.new("RGB", (1240, 1754), "white")
        draw = ImageDraw.Draw(image)
        for row, line in enumerate(lines):
            draw.text((120, 160 + row * 80), line, fill="black", font=font)
        images.append(image)
    images[0].save(path, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return path


def write(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return write_facts(folder / "facts.pdf"), write_scan(folder / "scan.pdf")


if __name__ == "__main__":
    for written in write(Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")):
        print(written)
