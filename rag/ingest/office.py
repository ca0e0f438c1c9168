"""Office files (Word, PowerPoint, Excel, OpenDocument, RTF) -> PDF, through LibreOffice.

A file is checked before LibreOffice sees it, and refused in one line when it is not what its
extension says (``rag.ingest.formats``), when its zip package is damaged, holds a path that leaves
the package (``../``), unpacks to more than ``MAX_UNPACKED`` (a zip bomb), carries an XML document
type declaration (entity expansion: no Office or OpenDocument part has one) or is encrypted. The
same checks hold for every variant: templates, macro-enabled files, shows, .xlsb (binary parts in
the same zip package) and flat OpenDocument files (one XML document, checked as a part is).

Then ``soffice --headless --convert-to pdf`` runs like poppler (``rag.ingest.sandbox``): a child
process under the file's time budget and memory cap, killed with the app. Each conversion gets
a throwaway LibreOffice profile, so concurrent conversions never share one, and that profile
forbids what a hostile document could ask for:

- macros never run (the highest macro security, and macro execution disabled);
- no network: where the kernel lets an unprivileged process make its own network namespace
  (``unshare -rn``, checked once), LibreOffice runs in one with no interface but loopback;
  everywhere, its proxy is a closed local port (so a remote template, a linked image or a
  web query would fail), links are never updated on load (Writer and Calc), and spreadsheets
  are never recalculated on load (no ``WEBSERVICE()``).

The PDF it writes is then indexed like any other (``rag.ingest.pdf``), within the same budget.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
import xml.parsers.expat
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from rag.errors import (
    ConversionError,
    EncryptedPdfError,
    OfficeUnavailableError,
    PdfLimitError,
    UnsupportedFileError,
    without_paths,
)
from rag.ingest import sandbox
from rag.ingest.formats import (
    OLE_MAGIC,
    ZIPPED,
    content_matches,
    describe,
    format_of,
    mismatch,
    suffix,
)

PACKAGES = "libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui"
MAX_UNPACKED = 2 * 2**30  # bytes a zip package may unpack to
MAX_ENTRIES = 20_000  # files in a zip package
MAX_RATIO = 200  # a part this many times smaller packed than unpacked, over BOMB_FLOOR: a bomb
BOMB_FLOOR = 50 * 2**20
XML_CHUNK = 4096  # bytes of an XML part read at a time, up to its root element
MAX_PROLOG = 2**20  # bytes before an XML part's root element: a genuine one has a few hundred
_OUTLINE_PAGE = re.compile(r'<item page="(\d+)"')
# fmt: off
_PROFILE = {  # (path, property): value, in LibreOffice's configuration
    ("org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel"): ("int", "3"),
    ("org.openoffice.Office.Common/Security/Scripting", "DisableMacrosExecution"):
        ("boolean", "true"),
    ("org.openoffice.Office.Common/Security/Scripting", "BlockUntrustedRefererLinks"):
        ("boolean", "true"),
    ("org.openoffice.Inet/Settings", "ooInetProxyType"): ("int", "2"),  # manual
    ("org.openoffice.Inet/Settings", "ooInetNoProxy"): ("string", ""),
    ("org.openoffice.Office.Writer/Content/Update", "Link"): ("int", "0"),  # never
    ("org.openoffice.Office.Calc/Content/Update", "Link"): ("int", "1"),  # never
    ("org.openoffice.Office.Calc/Formula/Load", "OOXMLRecalcMode"): ("int", "1"),  # never
    ("org.openoffice.Office.Calc/Formula/Load", "ODFRecalcMode"): ("int", "1"),  # never
    ("org.openoffice.Office.Common/Misc", "FirstRun"): ("boolean", "false"),
}
# fmt: on
for _scheme in ("HTTP", "HTTPS", "FTP"):
    _PROFILE["org.openoffice.Inet/Settings", f"ooInet{_scheme}ProxyName"] = ("string", "127.0.0.1")
    _PROFILE["org.openoffice.Inet/Settings", f"ooInet{_scheme}ProxyPort"] = ("int", "9")


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def check(path: Path, name: str) -> None:
    """Refuse, in one line, an office file that must not reach LibreOffice."""
    ending = suffix(name)
    with Path(path).open("rb") as handle:
        head = handle.read(len(OLE_MAGIC))
    # Office saves a password-protected .docx, .pptx or .xlsx as an OLE file ("EncryptedPackage")
    if ending in ZIPPED and head == OLE_MAGIC:
        raise EncryptedPdfError(f"{name}: the file is password-protected (remove the password)")
    if not content_matches(path, ending):
        raise UnsupportedFileError(mismatch(name, path))
    if ending in ZIPPED:
        check_package(path, name)
    elif format_of(name).container == "flat-xml":
        check_flat(path, name)


def check_package(path: Path, name: str) -> None:
    """A zip package's directory and parts, read without unpacking more of each XML part
    than what comes before its root element."""
    what = describe(name)
    try:
        with zipfile.ZipFile(path) as package:
            entries = package.infolist()
            _check_entries(entries, name, what)
            for entry in entries:
                if entry.filename.endswith((".xml", ".rels")):
                    with package.open(entry) as part:
                        _check_prolog(part, name, f"its part {entry.filename[:80]}")
                if entry.filename == "META-INF/manifest.xml":
                    with package.open(entry) as part:
                        if b"encryption-data" in part.read(1 << 20):
                            raise EncryptedPdfError(
                                f"{name}: the file is password-protected (remove the password)"
                            )
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        ValueError,
        OSError,
    ) as error:
        raise ConversionError(f"{name}: not {what}: its zip package is damaged ({error})") from None
    except NotImplementedError as error:  # a compression method zipfile cannot read
        raise ConversionError(f"{name}: not {what}: {error}") from None


def check_flat(path: Path, name: str) -> None:
    """A flat OpenDocument file (one XML document) that declares no entities."""
    with Path(path).open("rb") as handle:
        _check_prolog(handle, name, "it")


def _check_prolog(stream: IO[bytes], name: str, what: str) -> None:
    """Refuse an XML document (read from ``stream``) that declares a document type, where
    entities are declared, in whatever encoding it is written."""
    ending, first = _prolog(stream)
    # A document expat cannot read is LibreOffice's to judge, unless its declaration shows.
    shown = any(mark in first.replace(b"\x00", b"") for mark in (b"<!DOCTYPE", b"<!ENTITY"))
    if ending == "doctype" or (ending == "malformed" and shown):
        raise _declares(name, what)
    if ending == "encoding":  # Office and OpenDocument parts are UTF-8 or UTF-16
        raise ConversionError(f"{name}: {what} is written in an encoding no office file uses")
    if ending == "long":
        raise ConversionError(
            f"{name}: {what} holds over {MAX_PROLOG // 2**20} MB before its first element, "
            "which no genuine office file does"
        )


class _Ended(Exception):
    """The prolog ended: at a document type declaration, or at the root element."""


def _prolog(stream: IO[bytes]) -> tuple[str, bytes]:
    """How an XML document's prolog ends, and its first bytes: ``doctype`` (a document type
    declaration), ``root`` (its root element), ``long`` (neither in ``MAX_PROLOG`` bytes),
    ``encoding`` (declared in one expat cannot read) or ``malformed``. Expat reads the
    encoding as LibreOffice's parser does (the byte-order mark, the XML declaration), and
    reading stops at the root element."""
    parser = xml.parsers.expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _ended("doctype")
    parser.StartElementHandler = _ended("root")
    first, read = b"", 0
    try:
        while chunk := stream.read(XML_CHUNK):
            first, read = first or chunk, read + len(chunk)
            parser.Parse(chunk, False)
            if read >= MAX_PROLOG:
                return "long", first
        parser.Parse(b"", True)  # no element at all: an error
    except _Ended as ended:
        return str(ended), first
    except xml.parsers.expat.ExpatError as error:
        return ("encoding" if error.code == _UNKNOWN_ENCODING else "malformed"), first
    except ValueError:  # pyexpat: "multi-byte encodings are not supported"
        return "encoding", first
    return "malformed", first


def _ended(how: str):
    def handler(*_args) -> None:
        raise _Ended(how)

    return handler


_UNKNOWN_ENCODING = xml.parsers.expat.errors.codes[
    xml.parsers.expat.errors.XML_ERROR_UNKNOWN_ENCODING
]


def _declares(name: str, what: str) -> ConversionError:
    return ConversionError(
        f"{name}: {what} declares XML entities, which no genuine office file does "
        "(entity expansion)"
    )


# Bit 0 of a zip entry's flags: the entry is encrypted (ZipCrypto or strong encryption).
ZIP_ENCRYPTED = 0x1


def _check_entries(entries: list[zipfile.ZipInfo], name: str, what: str) -> None:
    if len(entries) > MAX_ENTRIES:
        raise PdfLimitError(f"{name}: {len(entries):,} parts is over the {MAX_ENTRIES:,} limit")
    total = 0
    for entry in entries:
        parts = PurePosixPath(entry.filename.replace("\\", "/")).parts
        if entry.filename.startswith(("/", "\\")) or ".." in parts or ":" in entry.filename:
            raise ConversionError(
                f"{name}: not {what}: it holds a part named {entry.filename[:80]!r}, "
                "outside the package"
            )
        if entry.flag_bits & ZIP_ENCRYPTED:  # a password-protected zip, renamed
            raise EncryptedPdfError(
                f"{name}: its zip package is password-protected, which no office file's own "
                "password does: remove the password"
            )
        total += entry.file_size
        packed = max(entry.compress_size, 1)
        if entry.file_size > BOMB_FLOOR and entry.file_size / packed > MAX_RATIO:
            raise PdfLimitError(
                f"{name}: {entry.filename[:80]} unpacks {entry.file_size / packed:,.0f} times "
                f"its size (a zip bomb; the limit is {MAX_RATIO}x)"
            )
    if total > MAX_UNPACKED:
        raise PdfLimitError(
            f"{name}: it unpacks to {total / 2**30:.1f} GB, over the "
            f"{MAX_UNPACKED / 2**30:.0f} GB limit"
        )


def to_pdf(path: Path, target: Path, name: str, budget: sandbox.Budget) -> None:
    """Convert ``path`` (checked by ``check``) to the PDF ``target``, within ``budget``."""
    executable = soffice()
    if executable is None:
        raise OfficeUnavailableError(
            f"{name}: LibreOffice is not installed, so office files cannot be read "
            f"(apt-get install -y {PACKAGES})"
        )
    with tempfile.TemporaryDirectory(prefix="soffice-") as scratch:
        work = Path(scratch)
        write_profile(work / "profile")
        source = work / f"document{suffix(name)}"  # a plain name: none of the upload's own
        _link_or_copy(path, source)
        arguments = [
            f"-env:UserInstallation={(work / 'profile').as_uri()}",
            *("--headless", "--invisible", "--nocrashreport", "--nodefault"),
            *("--nofirststartwizard", "--nolockcheck", "--nologo", "--norestore"),
            *("--convert-to", "pdf", "--outdir", str(work / "out"), str(source)),
        ]
        tool, arguments = isolated(executable, arguments)
        try:
            result = sandbox.run(tool, arguments, budget)
        except sandbox.OverTime:
            raise PdfLimitError(
                f"{name}: converting it took longer than the {budget.seconds:g} s allowed per file "
                "(RAG_RENDER_TIMEOUT_S)"
            ) from None
        converted = work / "out" / "document.pdf"
        if not converted.is_file() or converted.stat().st_size == 0:
            raise _failure(name, result, work, source.name)
        shutil.move(str(converted), target)


def sheet_starts(pdf: Path, budget: sandbox.Budget) -> list[int]:
    """The first page of each sheet of a workbook LibreOffice printed to ``pdf``, from the
    outline it writes (one entry per sheet); empty if there is none."""
    arguments = ["-xml", "-i", "-q", "-stdout", "-f", "1", "-l", "1", sandbox.absolute(pdf)]
    try:
        result = sandbox.run("pdftohtml", arguments, budget)
    except sandbox.OverTime:
        return []
    outline = result.stdout.partition("<outline>")[2].partition("</outline>")[0]
    return [int(page) for page in _OUTLINE_PAGE.findall(outline)]


def _failure(name: str, result: sandbox.Result, work: Path, copy: str) -> Exception:
    """The one line refusing ``name``, which LibreOffice (reading it as ``copy`` in the
    scratch folder ``work``) could not convert: its own error, with no path of the server."""
    if result.killed:
        return PdfLimitError(
            f"{name}: converting it needed more than the memory allowed per file "
            "(RAG_RENDER_MEMORY_MB)"
        )
    said = " ".join(line.strip() for line in result.stderr.splitlines() if line.startswith("Error"))
    for folder in (work.as_uri(), str(work)):
        said = said.replace(f"{folder}/", "")
    said = without_paths(said.replace(copy, name))
    reason = f" ({said[:200]})" if said else ""
    return ConversionError(
        f"{name}: LibreOffice could not read it: damaged, password-protected or not "
        f"{describe(name)}{reason}"
    )


def write_profile(folder: Path) -> None:
    """A LibreOffice user profile holding only the settings above."""
    items = "".join(
        f'<item oor:path="/{path}"><prop oor:name="{prop}" oor:op="fuse">'
        f'<value xsi:type="xs:{kind}">{value}</value></prop></item>\n'
        for (path, prop), (kind, value) in _PROFILE.items()
    )
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<oor:items xmlns:oor="http://openoffice.org/2001/registry" '
        'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        f"{items}</oor:items>\n"
    )
    (folder / "user").mkdir(parents=True)
    (folder / "user" / "registrymodifications.xcu").write_text(text)


def isolated(executable: str, arguments: list[str]) -> tuple[str, list[str]]:
    """The command that runs ``executable`` without network where the system allows it."""
    if network_namespaces():
        return "unshare", ["--user", "--map-root-user", "--net", executable, *arguments]
    return executable, arguments


@functools.cache
def network_namespaces() -> bool:
    """Whether this process may run a child in a network namespace of its own (containers
    often forbid it: then the profile's settings are what keeps LibreOffice offline)."""
    if shutil.which("unshare") is None:
        return False
    try:
        command = ["unshare", "--user", "--map-root-user", "--net", "true"]
        done = subprocess.run(command, check=False, capture_output=True, timeout=10)
        return done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        target.hardlink_to(Path(source).resolve())
    except OSError:  # another file system
        shutil.copyfile(source, target)
