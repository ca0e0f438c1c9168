"""Office files for the tests, made here: real ones (python-docx, python-pptx, openpyxl;
LibreOffice itself for the older and OpenDocument formats) and hostile ones (zip bombs, entity
expansion, escaping paths, remote templates and linked images, encryption).

Every real file holds words no other file has, so a test can find its pages by them.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from tests.helpers.files import truncated

# The words of each kind of file: what its pages say.
MEMO = ["Quarterly memo: invoice INV-7731 approved by Ada Lovelace.", "Part number PN-88-A."]
SLIDES = ["Roadmap Falcon launch", "Budget Osprey 1200", "Hiring Kestrel team"]
SHEETS = {"Budget": [["Item", "Amount"], ["Bluefinch", 1200]], "Staff": [["Grace Hopper"]]}
# LibreOffice's own formats and the older binary ones, made from the three above.
FROM = {
    ".odt": ".docx",
    ".doc": ".docx",
    ".rtf": ".docx",
    ".odp": ".pptx",
    ".ppt": ".pptx",
    ".ods": ".xlsx",
    ".xls": ".xlsx",
}


def docx(path: Path, pages: list[str] = MEMO) -> Path:
    import docx as python_docx

    document = python_docx.Document()
    for number, text in enumerate(pages):
        if number:
            document.add_page_break()
        document.add_paragraph(text)
    document.save(path)
    return path


def pptx(path: Path, slides: list[str] = SLIDES) -> Path:
    import pptx as python_pptx

    deck = python_pptx.Presentation()
    for text in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
        slide.shapes.title.text = text
    deck.save(path)
    return path


def xlsx(path: Path, sheets: dict[str, list[list]] = SHEETS) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def docm(path: Path) -> Path:
    """A macro-enabled Word document (its main part's type says so)."""
    source = docx(path.with_suffix(".source.docx"))
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    macro = "application/vnd.ms-word.document.macroEnabled.main+xml"
    rewrite(source, path, {"[Content_Types].xml": lambda xml: xml.replace(main, macro)})
    source.unlink()
    return path


def every_office_file(folder: Path) -> dict[str, Path]:
    """One file of every office type, by extension."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        ".docx": docx(folder / "memo.docx"),
        ".pptx": pptx(folder / "deck.pptx"),
        ".xlsx": xlsx(folder / "book.xlsx"),
        ".docm": docm(folder / "macro-memo.docm"),
    }
    for ending, source in FROM.items():
        made[ending] = libreoffice_convert(made[source], folder, ending)
    return made


def libreoffice_convert(source: Path, folder: Path, ending: str) -> Path:
    """``source`` saved by LibreOffice as ``ending`` (e.g. ``.ods``) in ``folder``."""
    with tempfile.TemporaryDirectory() as scratch:
        profile = Path(scratch) / "profile"
        out = Path(scratch) / "out"
        subprocess.run(
            [
                "soffice",
                f"-env:UserInstallation={profile.as_uri()}",
                "--headless",
                "--convert-to",
                ending[1:],
                "--outdir",
                str(out),
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        target = folder / f"{source.stem}-lo{ending}"
        shutil.move(out / f"{source.stem}{ending}", target)
    return target


# -- hostile office files -------------------------------------------------------------------


def rewrite(source: Path, target: Path, changes: dict, extra: dict | None = None) -> Path:
    """``source``'s zip package with some parts changed (name -> function of its text) and
    ``extra`` parts added (name -> bytes)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for entry in old.infolist():
            data = old.read(entry)
            if entry.filename in changes:
                data = changes[entry.filename](data.decode()).encode()
            new.writestr(entry.filename, data)
        for name, data in (extra or {}).items():
            new.writestr(name, data)
    return target


def zip_bomb(path: Path, unpacked_mb: int = 300) -> Path:
    """A real .docx with one more part: ``unpacked_mb`` of zeros, packed a thousand times."""
    source = docx(path.with_suffix(".source.docx"))
    shutil.copyfile(source, path)
    source.unlink()
    zeros = bytes(2**20)
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as package,
        package.open("word/media/zeros.bin", "w", force_zip64=True) as part,
    ):
        for _ in range(unpacked_mb):
            part.write(zeros)
    return path


def entity_expansion(path: Path) -> Path:
    """A .docx whose main part expands one entity into a billion ("billion laughs")."""
    source = docx(path.with_suffix(".source.docx"))
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    laughs = (
        f'<?xml version="1.0"?><!DOCTYPE w:document [{entities}]>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )
    rewrite(source, path, {"word/document.xml": lambda _: laughs})
    source.unlink()
    return path


def escaping_entry(path: Path) -> Path:
    source = docx(path.with_suffix(".source.docx"))
    rewrite(source, path, {}, {"../../outside.txt": b"escaped"})
    source.unlink()
    return path


def damaged_zip(path: Path) -> Path:
    """A .docx cut short: its zip directory (at the end) is gone."""
    data = docx(path.with_suffix(".source.docx")).read_bytes()
    path.with_suffix(".source.docx").unlink()
    return truncated(path, data, keep=len(data) - 200)


def encrypted_docx(path: Path, password: str = "secret") -> Path:
    """A password-protected .docx, as Office writes one (an OLE file)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    source = docx(path.with_suffix(".source.docx"))
    with source.open("rb") as plain:
        out = io.BytesIO()
        OOXMLFile(plain).encrypt(password, out)
    source.unlink()
    path.write_bytes(out.getvalue())
    return path


_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_DRAWING = "http://schemas.openxmlformats.org/drawingml/2006"


def remote_links(path: Path, url: str) -> Path:
    """A .docx attached to a remote template and showing an image linked (not embedded) from
    ``url``: opening it the careless way fetches both."""
    source = docx(path.with_suffix(".source.docx"))
    picture = (
        '<w:p><w:r><w:drawing><wp:inline><wp:extent cx="952500" cy="952500"/>'
        '<wp:docPr id="1" name="linked"/>'
        f'<a:graphic xmlns:a="{_DRAWING}/main"><a:graphicData uri="{_DRAWING}/picture">'
        f'<pic:pic xmlns:pic="{_DRAWING}/picture">'
        '<pic:nvPicPr><pic:cNvPr id="1" name="linked.png"/><pic:cNvPicPr/></pic:nvPicPr>'
        '<pic:blipFill><a:blip r:link="rIdLinked"/><a:stretch><a:fillRect/></a:stretch>'
        '</pic:blipFill><pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="952500" cy="952500"/>'
        '</a:xfrm><a:prstGeom prst="rect"/></pic:spPr></pic:pic></a:graphicData></a:graphic>'
        "</wp:inline></w:drawing></w:r></w:p>"
    )

    def document(xml: str) -> str:  # its root declares wp: and r: already
        return xml.replace("<w:body>", f"<w:body>{picture}", 1)

    def links(xml: str) -> str:
        linked = (
            f'<Relationship Id="rIdLinked" Type="{_REL}/image" Target="{url}/linked.png" '
            'TargetMode="External"/>'
        )
        return xml.replace("</Relationships>", f"{linked}</Relationships>")

    def settings(xml: str) -> str:
        return xml.replace("<w:zoom ", '<w:attachedTemplate r:id="rIdTemplate"/><w:zoom ', 1)

    template = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rIdTemplate" Type="{_REL}/attachedTemplate" '
        f'Target="{url}/template.dotx" TargetMode="External"/></Relationships>'
    )
    rewrite(
        source,
        path,
        {
            "word/document.xml": document,
            "word/_rels/document.xml.rels": links,
            "word/settings.xml": settings,
        },
        {"word/_rels/settings.xml.rels": template.encode()},
    )
    source.unlink()
    return path


def web_query_sheet(path: Path, url: str) -> Path:
    """A workbook whose cell asks a web service (``WEBSERVICE``) when recalculated."""
    return xlsx(path, {"Query": [["Rate"], [f'=WEBSERVICE("{url}/rate")']]})


def encrypted_odf(path: Path) -> Path:
    """An OpenDocument text whose manifest says its content is encrypted (as LibreOffice's
    "save with password" writes it)."""
    odf = "urn:oasis:names:tc:opendocument:xmlns"
    manifest = (
        f'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="{odf}:'
        'manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA">'
        '<manifest:algorithm manifest:algorithm-name="Blowfish CFB" '
        'manifest:initialisation-vector="AAAA"/></manifest:encryption-data>'
        "</manifest:file-entry></manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as package:
        mimetype = "application/vnd.oasis.opendocument.text"
        package.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
        package.writestr("content.xml", bytes(range(256)) * 4, zipfile.ZIP_DEFLATED)
        package.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
    return path
