#!/usr/bin/env python3
"""Checks that every code example in herald's public header comments is
compiled: each one must appear, token for token, in a test source that the
build compiles and ctest runs (`*test.cc` under a component's src/ or
tests/), ignoring white space and line breaks. Most live in the snippet tests `*/src/*header_examples*test.cc`; an
example that shows a whole test (a conformance suite instantiation) is that
test's own code.

An example is a paragraph of a comment indented by at least three spaces
after `//` (paragraphs are separated by an empty `//` line) whose lines are
mostly code: they end in `;`, `{`, `}`, `)` or `,`, or are preprocessor
lines. Prose, tables and wire formats in the same indentation are not code
and are skipped. Comparison ignores all white space (line breaks and
indentation are the formatter's business).

Usage: scripts/check-header-examples.py [REPO_ROOT]
Exit status: 0 when every example is found, 1 otherwise (each missing
example is printed with its header and line).
"""
import pathlib
import re
import sys

CODE_END = re.compile(r"[;{}),]\s*(//.*)?$")


def paragraphs(path):
    """Yields (line_number, [lines]) of indented comment paragraphs, except
    the continuation lines of a bullet ("// - ...") or of a sentence."""
    current, start, previous = [], 0, ""
    for number, raw in enumerate(path.read_text().split("\n"), 1):
        m = re.match(r"^\s*//(.*)$", raw)
        text = m.group(1) if m else None
        if text is not None and text.startswith("   "):
            if not current:
                start = number
                continuation = previous.strip().startswith("- ") or (previous.strip() != "" and not previous.strip().endswith(":"))
            current.append(text)
            continue
        if current and not continuation:
            yield start, current
        current = []
        previous = text if text is not None else ""
    if current and not continuation:
        yield start, current


def is_code(lines):
    # Comment lines inside an example say nothing about it being code.
    lines = [l.strip() for l in lines if l.strip() and not l.strip().startswith("//")]
    if not lines or any(l.startswith("- ") for l in lines):  # a bullet list is prose
        return False
    code = sum(1 for l in lines if CODE_END.search(l) or l.startswith("#include"))
    return code * 2 >= len(lines) and any(l.endswith(";") or l.endswith("{") for l in lines)


def normalized(lines):
    """The code without any white space: line breaks and indentation are
    the formatter's business, the tokens are the example's."""
    return re.sub(r"\s+", "", "".join(lines))


def contains(haystack, needle):
    return needle in haystack


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    headers = sorted(p for p in root.glob("**/include/herald/*/*.h") if "build" not in p.relative_to(root).parts[:1]
                     and not str(p.relative_to(root)).startswith(("build", ".cache")))
    snippets = sorted(p for p in list(root.glob("**/src/*test.cc")) + list(root.glob("tests/**/*test.cc"))
                      if not str(p.relative_to(root)).startswith(("build", ".cache")))
    if not any("header_examples" in p.name for p in snippets):
        print("no snippet tests (*/src/*header_examples*test.cc) found")
        return 1
    snippet_lines = [normalized(p.read_text().split("\n")) for p in snippets]
    examples = missing = 0
    for header in headers:
        for line, para in paragraphs(header):
            if not is_code(para):
                continue
            examples += 1
            want = normalized(para)
            if not any(contains(s, want) for s in snippet_lines):
                missing += 1
                print(f"{header.relative_to(root)}:{line}: example not compiled (not found, token for token, "
                      f"in any test source):")
                print("\n".join("    " + l.strip() for l in para if l.strip()))
    print(f"header examples: {examples} in {len(headers)} headers, {examples - missing} found in compiled "
          f"tests, {missing} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
