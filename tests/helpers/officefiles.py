"""Office files for the tests, made here: real ones (python-docx, python-pptx, openpyxl and
their retyped variants; LibreOffice itself for the older and OpenDocument formats; .xlsb and
drawings written by hand) and hostile ones (zip bombs, entity expansion, escaping paths,
remote templates and linked images, encryption).

Every real file of ``every_office_file`` holds a word no other file has (its ``codeword``), so
a test can find its page by it.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.helpers import xlsb
from tests.helpers.files import truncated

# The words of each kind of file: what its pages say.
MEMO = ["Quarterly memo: invoice INV-7731 approved by Ada Lovelace.", "Part number PN-88-A."]
SLIDES = ["Roadmap Falcon launch", "Budget Osprey 1200", "Hiring Kestrel team"]
SHEETS = {"Budget": [["Item", "Amount"], ["Bluefinch", 1200]], "Staff": [["Grace Hopper"]]}

# What each office type is made like: a two-page memo, a three-slide deck (drawings too: a
# page per slide) or a two-sheet workbook.
_TYPES_LIKE = {
    ".docx": ".docx .docm .dotx .dotm .doc .dot .rtf .odt .ott .fodt",
    ".pptx": ".pptx .pptm .ppsx .ppsm .potx .potm .ppt .pps .pot .odp .otp .fodp .odg .otg .fodg",
    ".xlsx": ".xlsx .xlsm .xlsb .xltx .xltm .xls .xlt .ods .ots .fods",
}
LIKE = {ending: like for like, endings in _TYPES_LIKE.items() for ending in endings.split()}
DRAWINGS = (".odg", ".otg", ".fodg")  # pages, not slides, though made from a deck

# OOXML: what makes a template, a macro-enabled file or a show is its main part's content
# type in [Content_Types].xml (ECMA-376 and [MS-OFFMACRO]); the parts are a .docx's,
# .pptx's or .xlsx's.
_WORD = "application/vnd.openxmlformats-officedocument.wordprocessingml"
_SHOW = "application/vnd.openxmlformats-officedocument.presentationml"
_BOOK = "application/vnd.openxmlformats-officedocument.spreadsheetml"
MAIN_TYPES = {
    ".docx": f"{_WORD}.document.main+xml",
    ".docm": "application/vnd.ms-word.document.macroEnabled.main+xml",
    ".dotx": f"{_WORD}.template.main+xml",
    ".dotm": "application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
    ".pptx": f"{_SHOW}.presentation.main+xml",
    ".pptm": "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml",
    ".ppsx": f"{_SHOW}.slideshow.main+xml",
    ".ppsm": "application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml",
    ".potx": f"{_SHOW}.template.main+xml",
    ".potm": "application/vnd.ms-powerpoint.template.macroEnabled.main+xml",
    ".xlsx": f"{_BOOK}.sheet.main+xml",
    ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
    ".xltx": f"{_BOOK}.template.main+xml",
    ".xltm": "application/vnd.ms-excel.template.macroEnabled.main+xml",
}
# Saved by LibreOffice from a file made like the type, through its export filter.
EXPORTS = {
    ".doc": "MS Word 97",
    ".dot": "MS Word 97 Vorlage",
    ".rtf": "Rich Text Format",
    ".odt": "writer8",
    ".fodt": "OpenDocument Text Flat XML",
    ".ppt": "MS PowerPoint 97",
    ".pps": "MS PowerPoint 97 AutoPlay",
    ".pot": "MS PowerPoint 97 Vorlage",
    ".odp": "impress8",
    ".fodp": "OpenDocument Presentation Flat XML",
    ".xls": "MS Excel 97",
    ".xlt": "MS Excel 97 Vorlage/Template",
    ".ods": "calc8",
    ".fods": "OpenDocument Spreadsheet Flat XML",
}
# OpenDocument templates: the document's package under the template's media type. (A drawing
# is written here: LibreOffice saves a deck as .odg only as a presentation so named.)
ODF_TEMPLATES = {".ott": ".odt", ".otp": ".odp", ".otg": ".odg", ".ots": ".ods"}
_ODF = "application/vnd.oasis.opendocument."
ODF_TYPES = {".odt": "text", ".odp": "presentation", ".odg": "graphics", ".ods": "spreadsheet"}


def codeword(ending: str) -> str:
    """The word only the file of this type holds (``CodewordDOTX``): a search for it must
    find that file, on the page that holds it."""
    return "Codeword" + ending[1:].upper()


def memo(ending: str) -> list[str]:
    """``MEMO``, its first page saying the type's codeword."""
    return [f"{MEMO[0]} {codeword(ending)}.", *MEMO[1:]]


def slides(ending: str) -> list[str]:
    """``SLIDES``, the second saying the type's codeword."""
    return [SLIDES[0], f"{SLIDES[1]} {codeword(ending)}", *SLIDES[2:]]


def sheets(ending: str) -> dict[str, list[list]]:
    """``SHEETS``, the second sheet saying the type's codeword."""
    return {**SHEETS, "Staff": [*SHEETS["Staff"], [codeword(ending)]]}


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


def made_like(path: Path, ending: str) -> Path:
    """A .docx, .pptx or .xlsx at ``path`` with the content of a file of type ``ending``."""
    like = LIKE[ending]
    if like == ".docx":
        return docx(path, memo(ending))
    if like == ".pptx":
        return pptx(path, slides(ending))
    return xlsx(path, sheets(ending))


def ooxml(path: Path) -> Path:
    """An OOXML file of ``path``'s type: the .docx, .pptx or .xlsx it is like, its main part
    typed as ``path``'s extension says (a template, macro-enabled, a show)."""
    ending = path.suffix
    source = made_like(path.with_suffix(f".source{LIKE[ending]}"), ending)
    typed = retyped(source, path, MAIN_TYPES[LIKE[ending]], MAIN_TYPES[ending])
    source.unlink()
    return typed


def retyped(source: Path, target: Path, old: str, new: str) -> Path:
    """``source``'s package with its main part's content type ``old`` written as ``new``."""
    with zipfile.ZipFile(source) as package:
        if f'"{old}"' not in package.read("[Content_Types].xml").decode():
            raise ValueError(f"{source.name}: its main part is not of type {old}")
    if old == new:
        shutil.copyfile(source, target)
        return target
    return rewrite(source, target, {"[Content_Types].xml": lambda xml: xml.replace(old, new)})


def odf_template(document: Path, path: Path) -> Path:
    """The OpenDocument template ``path`` made from ``document``: its media type (in
    ``mimetype`` and the manifest) the template's, its codeword the template type's."""
    ending, template = document.suffix, path.suffix
    kind = _ODF + ODF_TYPES[ending]
    return rewrite(
        document,
        path,
        {
            "mimetype": lambda _: f"{kind}-template",
            "META-INF/manifest.xml": lambda xml: xml.replace(f'"{kind}"', f'"{kind}-template"'),
            "content.xml": lambda xml: xml.replace(codeword(ending), codeword(template)),
        },
    )


_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "svg": "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0",
    "fo": "urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0",
}
_MANIFEST = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
_DRAWING_STYLES = (  # an A4 landscape page, the master page every page uses
    '<office:automatic-styles><style:page-layout style:name="PM1">'
    '<style:page-layout-properties fo:page-width="29.7cm" fo:page-height="21cm" '
    'style:print-orientation="landscape"/></style:page-layout></office:automatic-styles>'
    '<office:master-styles><style:master-page style:name="Default" '
    'style:page-layout-name="PM1"/></office:master-styles>'
)


def drawing(path: Path, pages: list[str]) -> Path:
    """An OpenDocument drawing, a page per text, as a package (.odg) or, for a path ending
    in .fodg, one flat XML file (ODF 1.3 part 3, section 2.2)."""
    spaces = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in _NS.items())
    body = "".join(
        f'<draw:page draw:name="page{n}" draw:master-page-name="Default">'
        '<draw:frame svg:x="2cm" svg:y="2cm" svg:width="25cm" svg:height="4cm">'
        f"<draw:text-box><text:p>{text}</text:p></draw:text-box></draw:frame></draw:page>"
        for n, text in enumerate(pages, start=1)
    )
    body = f"<office:body><office:drawing>{body}</office:drawing></office:body>"
    xml = '<?xml version="1.0" encoding="UTF-8"?>'
    kind = _ODF + ODF_TYPES[".odg"]
    if path.suffix == ".fodg":
        path.write_text(
            f'{xml}<office:document {spaces} office:version="1.3" office:mimetype="{kind}">'
            f"{_DRAWING_STYLES}{body}</office:document>",
            encoding="utf-8",
        )
        return path
    manifest = (
        f'{xml}<manifest:manifest xmlns:manifest="{_MANIFEST}" manifest:version="1.3">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{kind}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        '<manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("mimetype", kind, compress_type=zipfile.ZIP_STORED)  # first, stored
        package.writestr(
            "content.xml",
            f'{xml}<office:document-content {spaces} office:version="1.3">{body}'
            "</office:document-content>",
        )
        package.writestr(
            "styles.xml",
            f'{xml}<office:document-styles {spaces} office:version="1.3">{_DRAWING_STYLES}'
            "</office:document-styles>",
        )
        package.writestr("META-INF/manifest.xml", manifest)
    return path


def every_office_file(folder: Path) -> dict[str, Path]:
    """One file of every office type, by extension, each holding its ``codeword``.

    OOXML variants are retyped packages, .xlsb is written record by record
    (``tests.helpers.xlsb``), drawings are written here (``drawing``), OpenDocument
    templates are retyped documents, and the rest are saved by LibreOffice, one call per
    filter."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {ending: ooxml(folder / f"{_stem(ending)}{ending}") for ending in MAIN_TYPES}
    made[".xlsb"] = xlsb.write(folder / "book-xlsb.xlsb", sheets(".xlsb"))
    sources = folder / "sources"
    sources.mkdir()
    exports = {e: made_like(sources / f"{_stem(e)}{LIKE[e]}", e) for e in EXPORTS}
    with ThreadPoolExecutor(2) as pool:  # each its own LibreOffice: twice as fast
        saved = pool.map(lambda e: libreoffice_convert(exports[e], folder, e, EXPORTS[e]), exports)
        made.update(zip(exports, saved, strict=True))
    made[".odg"] = drawing(folder / f"{_stem('.odg')}.odg", slides(".odg"))
    made[".fodg"] = drawing(folder / f"{_stem('.fodg')}.fodg", slides(".fodg"))
    for template, ending in ODF_TEMPLATES.items():
        made[template] = odf_template(made[ending], folder / f"{_stem(template)}{template}")
    shutil.rmtree(sources)
    return made


def _stem(ending: str) -> str:
    """A file name that says what the file is like and what it is (``memo-dotx``)."""
    like = {".docx": "memo", ".pptx": "deck", ".xlsx": "book"}[LIKE[ending]]
    return f"{like}-{ending[1:]}"


def libreoffice_convert(source: Path, folder: Path, ending: str, export: str = "") -> Path:
    """``source`` saved by LibreOffice as ``ending`` (e.g. ``.ods``) in ``folder``, through
    the filter ``export`` (its default for ``ending`` if none)."""
    target = ending[1:] + (f":{export}" if export else "")
    with tempfile.TemporaryDirectory() as scratch:
        profile = Path(scratch) / "profile"
        out = Path(scratch) / "out"
        subprocess.run(
            [
                "soffice",
                f"-env:UserInstallation={profile.as_uri()}",
                "--headless",
                "--convert-to",
                target,
                "--outdir",
                str(out),
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        saved = folder / f"{source.stem}{ending}"
        shutil.move(out / f"{source.stem}{ending}", saved)
    return saved


# -- hostile office files -------------------------------------------------------------------


def rewrite(source: Path, target: Path, changes: dict, extra: dict | None = None) -> Path:
    """``source``'s zip package with some parts changed (name -> function of its text, giving
    text or bytes) and ``extra`` parts added (name -> bytes)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for entry in old.infolist():
            data = old.read(entry)
            if entry.filename in changes:
                data = changes[entry.filename](data.decode())
                data = data if isinstance(data, bytes) else data.encode()
            kept = zipfile.ZipInfo(entry.filename, entry.date_time)
            kept.compress_type = entry.compress_type  # an OpenDocument's mimetype stays stored
            new.writestr(kept, data)
        for name, data in (extra or {}).items():
            new.writestr(name, data)
    return target


def zip_bomb(path: Path, unpacked_mb: int = 300) -> Path:
    """A real .docx with one more part: ``unpacked_mb`` of zeros, packed a thousand times."""
    source = docx(path.with_suffix(".source.docx"))
    shutil.copyfile(source, path)
    source.unlink()
    return with_bomb(path, unpacked_mb)


def with_bomb(package: Path, unpacked_mb: int = 300) -> Path:
    """``package`` (any zip) with one more part: ``unpacked_mb`` of zeros."""
    zeros = bytes(2**20)
    with (
        zipfile.ZipFile(package, "a", zipfile.ZIP_DEFLATED) as zipped,
        zipped.open("media/zeros.bin", "w", force_zip64=True) as part,
    ):
        for _ in range(unpacked_mb):
            part.write(zeros)
    return package


def laughs(root: str, namespaces: str, body: str, before: str = "") -> str:
    """An XML document whose root ``root`` expands one entity into a billion ("billion
    laughs") in ``body``, its document type declared after ``before`` (a comment, say)."""
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{before}<!DOCTYPE {root} [{entities}]>'
        f"<{root} {namespaces}>{body.replace('LAUGHS', '&lol9;')}</{root}>"
    )


def entity_expansion(path: Path, before: str = "", encoding: str = "utf-8") -> Path:
    """A .docx whose main part expands one entity into a billion ("billion laughs"), its
    document type declared after ``before``, the part written in ``encoding``."""
    source = docx(path.with_suffix(".source.docx"))
    xml = laughs(
        "w:document",
        'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"',
        "<w:body><w:p><w:r><w:t>LAUGHS</w:t></w:r></w:p></w:body>",
        before,
    ).replace('encoding="UTF-8"', f'encoding="{encoding}"')
    part = "\ufeff" + xml if encoding.lower().startswith("utf-16") else xml
    rewrite(source, path, {"word/document.xml": lambda _: part.encode(encoding)})
    source.unlink()
    return path


def flat_entity_expansion(path: Path, before: str = "") -> Path:
    """A flat OpenDocument text (.fodt) expanding one entity into a billion."""
    namespaces = " ".join(
        [
            f'xmlns:office="{_NS["office"]}" xmlns:text="{_NS["text"]}"',
            f'office:version="1.3" office:mimetype="{_ODF}text"',
        ]
    )
    body = "<office:body><office:text><text:p>LAUGHS</text:p></office:text></office:body>"
    path.write_text(laughs("office:document", namespaces, body, before), encoding="utf-8")
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
    return encrypted_ooxml(path, password)


def encrypted_ooxml(path: Path, password: str = "secret") -> Path:
    """A password-protected OOXML file of ``path``'s type (.xlsm, .pptm, ...), as Office
    writes one: the package encrypted inside an OLE file (msoffcrypto-tool, [MS-OFFCRYPTO])."""
    from msoffcrypto.format.ooxml import OOXMLFile

    source = ooxml(path.with_suffix(f".source{path.suffix}"))
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
