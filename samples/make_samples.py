"""Regenerate the sample PDFs: ``python samples/make_samples.py``.

Real vector PDFs with selectable text, drawn with matplotlib (already a dependency) so that
the output is reproducible byte for byte (no creation dates):
- annual_report.pdf  a 3-page report: summary text, a bar chart, a table
- product_slides.pdf a 3-slide landscape deck
- expense_form.pdf   a form-like page with labelled boxes
- multilingual.pdf   a page in Greek and Russian (non-Latin scripts)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages

HERE = Path(__file__).parent
A4 = (8.27, 11.69)
SLIDE = (11.0, 6.19)
METADATA = {"Creator": "samples/make_samples.py", "Producer": None, "CreationDate": None}
REVENUE = {"2021": 41.2, "2022": 48.9, "2023": 57.3, "2024": 63.8}


def text_page(title: str, lines: list[str], size=A4, font: float = 12):
    figure = plt.figure(figsize=size)
    figure.text(0.08, 0.92, title, fontsize=22, weight="bold")
    for row, line in enumerate(lines):
        figure.text(0.08, 0.85 - row * 0.035, line, fontsize=font)
    return figure


def report(pdf: PdfPages) -> None:
    pdf.savefig(
        text_page(
            "Northwind Instruments",
            [
                "Annual Report 2024",
                "",
                "Summary",
                "Revenue grew 11% to 63.8 million euros, driven by the sensor line.",
                "Operating margin improved from 14.2% to 16.5%.",
                "Headcount rose to 412 employees across 3 sites (Lyon, Gdansk, Porto).",
                "The board proposes a dividend of 1.20 euros per share.",
                "",
                "Outlook",
                "We expect revenue between 68 and 72 million euros in 2025.",
                "Capital expenditure will focus on the new Gdansk assembly hall.",
            ],
        )
    )
    figure, axes = plt.subplots(figsize=A4)
    axes.bar(list(REVENUE), list(REVENUE.values()), color="#3b6ea8")
    axes.set_title("Revenue by year (million euros)", fontsize=18)
    axes.set_ylabel("million euros")
    for year, value in REVENUE.items():
        axes.annotate(f"{value}", (year, value), ha="center", va="bottom", fontsize=12)
    pdf.savefig(figure)
    figure, axes = plt.subplots(figsize=A4)
    axes.axis("off")
    axes.set_title("Revenue by product line, 2024", fontsize=18)
    rows = [
        ["Sensors", "31.4", "+18%"],
        ["Controllers", "19.7", "+6%"],
        ["Services", "12.7", "+4%"],
        ["Total", "63.8", "+11%"],
    ]
    table = axes.table(cellText=rows, colLabels=["Line", "Revenue (M EUR)", "Growth"], loc="center")
    table.scale(1, 2.5)
    table.set_fontsize(13)
    pdf.savefig(figure)


def slides(pdf: PdfPages) -> None:
    for title, bullets in [
        ("Project Falcon", ["Quarterly review", "Q3 2024", "Product team"]),
        ("Milestones", ["Beta shipped to 40 customers", "Latency cut from 220 ms to 90 ms"]),
        ("Next steps", ["General availability in March", "Hire two support engineers"]),
    ]:
        figure = text_page(title, [f"- {b}" for b in bullets], size=SLIDE, font=20)
        figure.patch.set_facecolor("#eef3fa")
        pdf.savefig(figure, facecolor=figure.get_facecolor())


def form(pdf: PdfPages) -> None:
    figure = plt.figure(figsize=A4)
    figure.text(0.08, 0.93, "Travel Expense Claim", fontsize=22, weight="bold")
    fields = [
        ("Employee name", "Ana Ribeiro"),
        ("Department", "Field engineering"),
        ("Trip", "Porto to Gdansk, 12-15 May 2024"),
        ("Flights", "412.50 EUR"),
        ("Hotel (3 nights)", "387.00 EUR"),
        ("Meals", "96.40 EUR"),
        ("Total claimed", "895.90 EUR"),
        ("Approved by", "M. Kowalski"),
    ]
    for row, (label, value) in enumerate(fields):
        y = 0.84 - row * 0.08
        figure.text(0.08, y + 0.025, label, fontsize=10, color="#555555")
        figure.patches.append(
            plt.Rectangle((0.08, y - 0.015), 0.84, 0.035, fill=False, transform=figure.transFigure)
        )
        figure.text(0.1, y - 0.005, value, fontsize=13)
    pdf.savefig(figure)


def multilingual(pdf: PdfPages) -> None:
    pdf.savefig(
        text_page(
            "Οδηγός εγκατάστασης",
            [
                "Руководство по установке",
                "",
                "Ελληνικά: Συνδέστε τον αισθητήρα στη θύρα Α και πατήστε το κουμπί.",
                "Η θερμοκρασία λειτουργίας είναι από -20 έως 60 βαθμούς Κελσίου.",
                "",
                "Русский: Подключите датчик к порту А и нажмите кнопку.",
                "Рабочая температура от -20 до 60 градусов Цельсия.",
                "Гарантия на устройство составляет два года.",
            ],
            font=13,
        )
    )


def main() -> None:
    for name, draw in [
        ("annual_report.pdf", report),
        ("product_slides.pdf", slides),
        ("expense_form.pdf", form),
        ("multilingual.pdf", multilingual),
    ]:
        with PdfPages(HERE / name, metadata=METADATA) as pdf:
            draw(pdf)
        plt.close("all")
        print(HERE / name)


if __name__ == "__main__":
    main()
