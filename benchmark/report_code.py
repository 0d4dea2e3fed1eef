"""Static code metrics for benchmark/report.py: files, SLOC, gzip size, function count.

Everything here works on the text of C++ sources only (no compiler, no external tools):

* `strip_cpp` removes comments with a small state machine that knows string literals
  (with escapes), raw string literals `R"d(...)d"` (with the u8/u/U/L prefixes), character
  literals and C++14 digit separators (`1'000`), so `//` or `/*` inside a literal is not a
  comment and a `'` inside a number is not a character literal.
* A line is SLOC when something other than whitespace is left on it after comments are
  removed; a comment-only line is one that had a comment and nothing else.
* `count_functions` finds function *definitions* (a body follows) with the heuristic in
  FUNCTION_HEURISTIC, which report.py copies into the page.
"""

import gzip
import os
import re

CPP_EXTENSIONS = (".hpp", ".h", ".hh", ".hxx", ".ipp", ".tpp", ".inl", ".cpp", ".cc", ".cxx")

FUNCTION_HEURISTIC = (
    "After comments, string/character literal contents and preprocessor lines are removed, "
    "a function definition is a name (an identifier, optionally qualified with `::` or "
    "prefixed by `~`, or an `operator` token) followed by a balanced parameter list `( … )`, "
    "then optionally `const`/`volatile`/`&`/`&&`/`noexcept(…)`/`override`/`final`/`mutable`, "
    "a trailing return type `-> …` and a `requires` clause, then optionally a constructor "
    "initialiser list `: m(…), n{…}`, and finally an opening `{` (or `try`). Names that are "
    "keywords or keyword-like operators (`if`, `for`, `while`, `switch`, `catch`, `return`, "
    "`sizeof`, `decltype`, `noexcept`, `requires`, `static_assert`, `alignas`, casts, …) are "
    "excluded. So declarations (`;`), `= default`/`= delete` and lambdas are not counted; "
    "every definition of a template counts once (not per instantiation); macro invocations "
    "followed by a body (e.g. GoogleTest's `TEST(Suite, Name) { … }`) count as one function "
    "each, since they expand to one."
)

_NOT_FUNCTIONS = frozenset(
    "if for while switch catch return sizeof alignof alignas decltype noexcept requires "
    "static_assert throw new delete typeid co_await co_return co_yield using case do else "
    "explicit static_cast dynamic_cast const_cast reinterpret_cast constexpr consteval "
    "constinit and or not defined __attribute__ __declspec _Pragma __builtin_expect "
    "assert".split())

_RAW_PREFIX = re.compile(r"(?:^|[^A-Za-z0-9_])(?:u8|u|U|L)?R$")


def strip_cpp(text, blank_literals=False):
    """Returns (code, comment_lines): `code` is `text` with every comment replaced by spaces
    (newlines kept, so line numbers stay), and, with blank_literals, the contents of string
    and character literals removed (the quotes stay). `comment_lines` is the set of 0-based
    line numbers that contained (part of) a comment."""
    out = []
    comment_lines = set()
    line = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":  # line comment (a trailing backslash continues it)
            comment_lines.add(line)
            i += 2
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append("\n")
                    line += 1
                    comment_lines.add(line)
                    i += 2
                    continue
                i += 1
            out.append(" ")
            continue
        if c == "/" and nxt == "*":  # block comment
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            comment_lines.add(line)
            for ch in text[i:end]:
                if ch == "\n":
                    out.append("\n")
                    line += 1
                    comment_lines.add(line)
            out.append(" ")
            i = end
            continue
        if c == '"':
            if _RAW_PREFIX.search(text[max(0, i - 4):i]):  # raw string R"delim( ... )delim"
                paren = text.find("(", i + 1)
                if 0 <= paren - i - 1 <= 16:
                    delim = text[i + 1:paren]
                    end = text.find(")" + delim + '"', paren + 1)
                    end = n if end < 0 else end + len(delim) + 2
                    body = text[i:end]
                    line += body.count("\n")
                    out.append('""' + "\n" * body.count("\n") if blank_literals else body)
                    i = end
                    continue
            j = i + 1
            while j < n and text[j] != '"' and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append('""' if blank_literals else text[i:j])
            line += text[i:j].count("\n")
            i = j
            continue
        if c == "'":
            k = i - 1
            while k >= 0 and (text[k].isalnum() or text[k] in "_'."):
                k -= 1
            token = text[k + 1:i]
            if token and token[0].isdigit():  # digit separator: 1'000'000, 0xFF'FF
                out.append(c)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != "'" and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append("''" if blank_literals else text[i:j])
            line += text[i:j].count("\n")
            i = j
            continue
        if c == "\n":
            line += 1
        out.append(c)
        i += 1
    return "".join(out), comment_lines


def line_counts(text):
    """{'lines', 'sloc', 'comment', 'blank'} for one C++ source text."""
    code, comment_lines = strip_cpp(text)
    lines = code.split("\n")
    if lines and lines[-1] == "" and text.endswith("\n"):
        lines.pop()
    sloc = comment = blank = 0
    for k, ln in enumerate(lines):
        if ln.strip():
            sloc += 1
        elif k in comment_lines:
            comment += 1
        else:
            blank += 1
    return {"lines": len(lines), "sloc": sloc, "comment": comment, "blank": blank}


def _drop_preprocessor(code):
    out = []
    continued = False
    for ln in code.split("\n"):
        directive = continued or ln.lstrip().startswith("#")
        continued = directive and ln.rstrip().endswith("\\")
        out.append("" if directive else ln)
    return "\n".join(out)


def _match_close(text, pos, open_ch, close_ch, limit=20000):
    """Index just past the bracket matching text[pos] == open_ch, or -1."""
    depth = 0
    end = min(len(text), pos + limit)
    for k in range(pos, end):
        ch = text[k]
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return k + 1
    return -1


_WS = re.compile(r"\s*")
_WORD = re.compile(r"[A-Za-z_]\w*")
_NAME = re.compile(
    r"(?<![\w.$])(?P<name>"
    r"operator\s*(?:\(\s*\)|\[\s*\]|->\*?|<=>|<<=|>>=|<<|>>|&&|\|\||\+\+|--|"
    r"new(?:\s*\[\s*\])?|delete(?:\s*\[\s*\])?|\"\"\s*\w+|[-+*/%^&|~!=<>,]=?|[A-Za-z_][\w:]*)"
    r"|~\s*[A-Za-z_]\w*|[A-Za-z_]\w*)\s*\(")
_QUALIFIERS = ("const", "volatile", "override", "final", "mutable", "noexcept", "throw")
_INIT_NAME = re.compile(r"[A-Za-z_][\w:]*(?:\s*<[^;{}()]*?>)?\s*")


def _skip_ws(text, pos):
    return _WS.match(text, pos).end()


def _scan_to_body(text, pos):
    """From pos, skips to the first '{' or ';' or '=' at parenthesis depth 0 (used for a
    trailing return type or a requires clause); returns its index or -1."""
    depth = 0
    for k in range(pos, min(len(text), pos + 4000)):
        ch = text[k]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and ch in "{;=":
            return k
    return -1


def _is_definition(text, close):
    """True when what follows the parameter list ending at `close` makes it a definition."""
    pos = _skip_ws(text, close)
    while pos < len(text):
        w = _WORD.match(text, pos)
        word = w.group(0) if w else ""
        if word in _QUALIFIERS:
            pos = _skip_ws(text, w.end())
            if word in ("noexcept", "throw") and text.startswith("(", pos):
                pos = _match_close(text, pos, "(", ")")
                if pos < 0:
                    return False
                pos = _skip_ws(text, pos)
            continue
        if text.startswith("&&", pos) or text.startswith("&", pos):
            pos = _skip_ws(text, pos + (2 if text.startswith("&&", pos) else 1))
            continue
        if text.startswith("->", pos) or word == "requires":
            pos = _scan_to_body(text, pos + 2 if word != "requires" else w.end())
            if pos < 0:
                return False
            break
        break
    if pos >= len(text):
        return False
    if text[pos] == "{":
        return True
    w = _WORD.match(text, pos)
    if w and w.group(0) == "try":
        return True
    if text[pos] == ":" and not text.startswith("::", pos):  # constructor initialiser list
        pos = _skip_ws(text, pos + 1)
        for _ in range(200):
            m = _INIT_NAME.match(text, pos)
            if not m or m.end() == pos:
                return False
            pos = m.end()
            if pos < len(text) and text[pos] == "(":
                pos = _match_close(text, pos, "(", ")")
            elif pos < len(text) and text[pos] == "{":
                pos = _match_close(text, pos, "{", "}")
            else:
                return False
            if pos < 0:
                return False
            pos = _skip_ws(text, pos)
            if text.startswith("...", pos):
                pos = _skip_ws(text, pos + 3)
            if pos < len(text) and text[pos] == ",":
                pos = _skip_ws(text, pos + 1)
                continue
            return pos < len(text) and text[pos] == "{"
    return False


def count_functions(text):
    """Number of function definitions in one C++ source text (see FUNCTION_HEURISTIC)."""
    code, _ = strip_cpp(text, blank_literals=True)
    code = _drop_preprocessor(code)
    count = 0
    for m in _NAME.finditer(code):
        name = m.group("name").lstrip("~").strip()
        if name in _NOT_FUNCTIONS:
            continue
        paren = m.end() - 1
        close = _match_close(code, paren, "(", ")")
        if close > 0 and _is_definition(code, close):
            count += 1
    return count


def _source_files(root, exclude_dirs=()):
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and not d.startswith("build")
                             and os.path.join(dirpath, d) not in exclude_dirs)
        for f in sorted(filenames):
            files.append(os.path.join(dirpath, f))
    return sorted(files)


def directory_metrics(root):
    """Metrics of the C++ sources under root, or None if root is not a directory.
    Returns {'files', 'lines', 'sloc', 'comment', 'blank', 'bytes', 'gzip_bytes',
    'functions', 'other_files'}; gzip is of the concatenation in sorted path order."""
    if not os.path.isdir(root):
        return None
    total = {"files": 0, "lines": 0, "sloc": 0, "comment": 0, "blank": 0, "bytes": 0,
             "gzip_bytes": 0, "functions": 0, "other_files": 0}
    blob = []
    for path in _source_files(root):
        if not path.endswith(CPP_EXTENSIONS):
            total["other_files"] += 1
            continue
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        text = raw.decode("utf-8", errors="replace")
        counts = line_counts(text)
        for key in ("lines", "sloc", "comment", "blank"):
            total[key] += counts[key]
        total["files"] += 1
        total["bytes"] += len(raw)
        total["functions"] += count_functions(text)
        blob.append(raw)
    total["gzip_bytes"] = len(gzip.compress(b"".join(blob), compresslevel=9, mtime=0))
    return total
