"""Rendering of ``/etc/blockhost/db.yaml``.

PyYAML is used when importable (the installer host has it); otherwise a small
emitter handles the subset we write: nested mappings, lists, ints, bools,
None and strings.  Strings are emitted plain only when YAML 1.1 cannot read
them as anything else; everything else is double-quoted (so ``10.0.0.1``,
``yes``, ``0750`` or ``2001:db8::/120`` stay strings).

The previous file's ``ipv6_pool`` (added by the installer's IPv6 step) is
carried over: parsed with PyYAML when possible, else copied verbatim as the
raw text block.
"""

import re

try:  # pragma: no cover - depends on the host
    import yaml  # type: ignore
except Exception:  # pragma: no cover
    yaml = None

_PLAIN_RE = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*", re.ASCII)
_YAML11_WORDS = {
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
}


def _quote(text):
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append("\\x%02x" % code)
        elif 0x80 <= code <= 0x9F or code in (0x2028, 0x2029, 0xFEFF):
            out.append("\\u%04x" % code)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def scalar(value):
    """YAML text of one scalar value."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if _PLAIN_RE.fullmatch(text) and text.lower() not in _YAML11_WORDS:
        return text
    return _quote(text)


def _key(key):
    text = str(key)
    if _PLAIN_RE.fullmatch(text) and text.lower() not in _YAML11_WORDS:
        return text
    return _quote(text)


def _emit(value, indent, lines):
    pad = "  " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict) and v:
                lines.append("%s%s:" % (pad, _key(k)))
                _emit(v, indent + 1, lines)
            elif isinstance(v, (list, tuple)) and v:
                lines.append("%s%s:" % (pad, _key(k)))
                _emit(list(v), indent + 1, lines)
            elif isinstance(v, dict):
                lines.append("%s%s: {}" % (pad, _key(k)))
            elif isinstance(v, (list, tuple)):
                lines.append("%s%s: []" % (pad, _key(k)))
            else:
                lines.append("%s%s: %s" % (pad, _key(k), scalar(v)))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                lines.append("%s-" % pad)
                _emit(item, indent + 1, lines)
            elif isinstance(item, dict):
                lines.append("%s- {}" % pad)
            elif isinstance(item, list):
                lines.append("%s- []" % pad)
            else:
                lines.append("%s- %s" % (pad, scalar(item)))
    else:
        lines.append(pad + scalar(value))


def dump_plain(doc):
    """Hand-written emitter (block style, insertion order)."""
    lines = []
    _emit(doc, 0, lines)
    return "\n".join(lines) + "\n"


def dump(doc):
    """Render *doc* (a dict) as YAML text, with PyYAML when available."""
    if yaml is not None:
        return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    return dump_plain(doc)


def extract_block(text, key):
    """Raw lines of the top-level *key* in YAML *text* (or None)."""
    lines = text.splitlines()
    pattern = re.compile(r"%s\s*:(?:\s|$)" % re.escape(key))
    for i, line in enumerate(lines):
        if pattern.match(line):
            block = [line]
            for nxt in lines[i + 1:]:
                # continuation: blank, indented, or a block sequence item
                if not nxt.strip() or nxt[0] in " \t-":
                    block.append(nxt)
                else:
                    break
            while block and block[-1].strip() == "":
                block.pop()
            return block
    return None


def preserved_key(text, key):
    """Return ``(value, raw_lines)`` for *key* from a previous YAML file.

    With PyYAML: ``(parsed value or None, None)`` -- raw lines are only used
    when the file cannot be parsed.  Without PyYAML: ``(None, raw lines)``.
    """
    if not text:
        return None, None
    if yaml is not None:
        try:
            data = yaml.safe_load(text)
        except Exception:
            data = None
        else:
            if isinstance(data, dict):
                return data.get(key), None
    return None, extract_block(text, key)


def render_db_yaml(doc, raw_tail=None):
    """YAML text for *doc*, followed by verbatim *raw_tail* lines if given."""
    text = dump(doc)
    if raw_tail:
        text += "\n".join(raw_tail) + "\n"
    return text
