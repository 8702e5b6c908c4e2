#!/usr/bin/env python3
"""Dead-link check of upfs's documentation (ctest docs.links, label unit).

    tests/docs/check_links.py [REPO_ROOT] [FILE.md ...]

Checks every relative link in README.md, docs/*.md and tests/ceph/*.md (or
in the FILEs given, relative to REPO_ROOT): the file or directory it names
must exist inside the repository, and an `#anchor`, in the same file or
another Markdown file, must name one of that file's headings (GitHub's
anchors: the heading's text as rendered, lowercased, punctuation dropped,
spaces as `-`, a repeated heading suffixed `-1`, `-2`, ...) or an
`<a id="...">` / `<a name="...">` in it. Links to http(s), mailto and
other schemes are skipped (CI has no network). Links inside fenced code
blocks and inline code spans are not links, and neither are headings in
fenced code (a `# HELP` line of a metrics example).

Prints one line per dead link, `FILE:LINE: TARGET: why`, and exits 1 if
there is any, 0 otherwise.
"""
import os
import re
import sys
import unicodedata

DEFAULT_GLOBS = [("", ["README.md"]), ("docs", None), ("tests/ceph", None)]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target) and ![alt](target), target without spaces, optional "title".
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def strip_inline_markup(text):
    """The heading's text as GitHub renders it: no code ticks, links as their text."""
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"(\*\*|__|\*|_)(.+?)\1", r"\2", text)
    return text


def github_anchor(text):
    text = strip_inline_markup(text).strip().lower()
    out = []
    for ch in text:
        if ch == " ":
            out.append("-")
        elif ch in "-_" or unicodedata.category(ch)[0] in "LN":
            out.append(ch)
    return "".join(out)


def scan(path):
    """(anchors, links): the file's anchors, and its links as (line, target)."""
    anchors, links, seen = set(), [], {}
    fence = None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for number, line in enumerate(lines, 1):
        m = FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        h = HEADING.match(line)
        if h:
            base = github_anchor(h.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            anchors.add(base if n == 0 else f"{base}-{n}")
        anchors.update(HTML_ANCHOR.findall(line))
        without_code = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        for link in INLINE_LINK.finditer(without_code):
            links.append((number, link.group(1)))
        r = REF_DEF.match(without_code)
        if r:
            links.append((number, r.group(1)))
    return anchors, links


def default_files(root):
    files = []
    for directory, names in DEFAULT_GLOBS:
        full = os.path.join(root, directory)
        if names is None:
            names = sorted(n for n in os.listdir(full) if n.endswith(".md")) if os.path.isdir(full) else []
        files += [os.path.join(directory, n) for n in names if os.path.isfile(os.path.join(full, n))]
    return files


def main(argv):
    root = os.path.abspath(argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
    files = argv[2:] or default_files(root)
    if not files:
        print(f"no Markdown files under {root}", file=sys.stderr)
        return 1
    cache = {}

    def anchors_of(path):
        if path not in cache:
            cache[path] = scan(path)[0]
        return cache[path]

    dead = 0
    checked = 0
    for rel in files:
        path = os.path.join(root, rel)
        for number, target in scan(path)[1]:
            if not target or SCHEME.match(target) or target.startswith("//"):
                continue
            checked += 1
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            why = None
            if os.path.commonpath([root, dest]) != root:
                why = "points outside the repository"
            elif not os.path.exists(dest):
                why = "no such file or directory"
            elif anchor and dest.endswith(".md") and anchor not in anchors_of(dest):
                why = f"no heading with anchor #{anchor} in {os.path.relpath(dest, root)}"
            if why:
                dead += 1
                print(f"{rel}:{number}: {target}: {why}")
    print(f"{checked} relative links in {len(files)} files, {dead} dead")
    return 1 if dead else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
