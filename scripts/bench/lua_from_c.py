#!/usr/bin/env python3
"""What the benchmark needs of one script of the redis stock plugin, read from its C source.

    lua_from_c.py text SCRIPTS.C NAME               the Lua text of NAME_lua
    lua_from_c.py keys SCRIPTS.C NAME               the key suffixes it takes, one a line
    lua_from_c.py argv SCRIPTS.C NAME               the names of its ARGV, one a line
                                                    (a batched script: the fixed
                                                    names, a line "--", then the
                                                    names repeated per reservation)

The benchmark runs the plugin's own reserve script under redis-benchmark; reading it
from the sources (rather than keeping a copy) means the two can never drift.

text: the `static const char NAME_lua[] = "..." "...";` definition: its adjacent
string literals are joined and their C escapes decoded, as the compiler does.
keys: `.name = "NAME", ... .nkeys = N` in the script table of scripts.c gives how
many of the item's keys the script takes, and the `suffix[RS_NKEYS] = {...}` array in
the same file (sk_rstock_keys) their names, in KEYS order.
argv: the "ARGV: a, b, c." sentence of the comment right above the definition
(the comments there are the scripts' contract, see STYLE.md), or the batched form
"ARGV: a, b, c; then per reservation: d, e, f, g." (ARGV is a, b, c followed by
d, e, f, g once per reservation); the names are letters, digits and _.
Anything this reader does not understand (another escape, a macro between the
literals, a table it cannot find) is refused rather than guessed; the caller still
checks that Redis knows the text's SHA1 from the daemon's own calls.
"""
import re
import sys

ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def decode(literal, where):
    out = []
    i = 0
    while i < len(literal):
        c = literal[i]
        if c == "\\":
            nxt = literal[i + 1] if i + 1 < len(literal) else ""
            if nxt not in ESCAPES:
                raise ValueError(f"{where}: escape \\{nxt} is not one this reader decodes")
            out.append(ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def extract(source, name, path):
    start = re.search(r"static\s+const\s+char\s+" + re.escape(name) + r"_lua\s*\[\s*\]\s*=", source)
    if start is None:
        raise ValueError(f"{path}: no definition 'static const char {name}_lua[] =' found")
    pos = start.end()
    parts = []
    literal = re.compile(r'\s*"((?:[^"\\\n]|\\.)*)"')
    while True:
        m = literal.match(source, pos)
        if m is None:
            break
        parts.append(decode(m.group(1), f"{path}: {name}_lua"))
        pos = m.end()
    end = re.match(r"\s*;", source[pos:])
    if not parts or end is None:
        raise ValueError(f"{path}: {name}_lua is not a plain sequence of string literals ending in ';'")
    return "".join(parts)


def key_suffixes(scripts, scripts_path, name):
    m = re.search(r'\.name\s*=\s*"' + re.escape(name) + r'"[^}]*?\.nkeys\s*=\s*(\d+)', scripts)
    if m is None:
        raise ValueError(f'{scripts_path}: no script table entry {{.name = "{name}", ... .nkeys = N}}')
    nkeys = int(m.group(1))
    m = re.search(r"\bsuffix\s*\[\s*RS_NKEYS\s*\]\s*=\s*\{([^}]*)\}", scripts)
    if m is None:
        raise ValueError(f"{scripts_path}: no array 'suffix[RS_NKEYS] = {{...}}' found")
    names = re.findall(r'"([A-Za-z0-9_]+)"', m.group(1))
    if nkeys < 1 or nkeys > len(names):
        raise ValueError(f"{scripts_path}: {name} takes {nkeys} keys; its suffix array names {len(names)}")
    return names[:nkeys]


NAMES = r"[A-Za-z0-9_]+(?:\s*,\s*[A-Za-z0-9_]+)*"
ARGV_SENTENCE = re.compile(r"\bARGV:\s*(" + NAMES + r")\s*(?:;\s*then per reservation:\s*(" + NAMES + r")\s*)?\.")


def argv_names(source, name, path):
    """(fixed names, per-reservation names or None for an unbatched script)."""
    start = re.search(r"static\s+const\s+char\s+" + re.escape(name) + r"_lua\s*\[", source)
    if start is None:
        raise ValueError(f"{path}: no definition 'static const char {name}_lua[] =' found")
    comment = re.search(r"/\*((?:(?!\*/).)*)\*/\s*$", source[:start.start()], re.S)
    if comment is None:
        raise ValueError(f"{path}: no comment right above {name}_lua")
    text = " ".join(line.strip().lstrip("*").strip() for line in comment.group(1).splitlines())
    at = re.search(r"\bARGV:", text)
    m = ARGV_SENTENCE.match(text, at.start()) if at else None
    if m is None:
        found = f" (it reads '{text[at.start():at.start() + 120]}')" if at else ""
        raise ValueError(f"{path}: the comment above {name}_lua has no 'ARGV: a, b, c.' or 'ARGV: a, b, c; then "
                         f"per reservation: d, e, f, g.' sentence{found}")

    def split(names):
        return [a.strip() for a in names.split(",")]

    return split(m.group(1)), split(m.group(2)) if m.group(2) else None


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def main():
    args = sys.argv[1:]
    try:
        if len(args) == 3 and args[0] == "text":
            sys.stdout.write(extract(read(args[1]), args[2], args[1]))
        elif len(args) == 3 and args[0] == "argv":
            fixed, per = argv_names(read(args[1]), args[2], args[1])
            print("\n".join(fixed + (["--"] + per if per is not None else [])))
        elif len(args) == 3 and args[0] == "keys":
            print("\n".join(key_suffixes(read(args[1]), args[1], args[2])))
        else:
            print("usage: lua_from_c.py text SCRIPTS.C NAME | keys SCRIPTS.C NAME | argv SCRIPTS.C NAME",
                  file=sys.stderr)
            return 2
    except (OSError, ValueError) as e:
        print(f"lua_from_c.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
