#!/usr/bin/env python3
"""jinja2_ref.py -- render a chat template as transformers' apply_chat_template does (Python's
jinja2), to check by hand what the corpus test's allow-list (corpus.test.mjs) says jinja2 does
where @huggingface/jinja disagrees. Not run by ctest: needs `python3 -m pip install jinja2`.

    python3 jinja2_ref.py TEMPLATE.jinja CONTEXT.json [NOW_UNIX] [--mutable]

prints the rendering to stdout with no newline added (exit 0), or `jinja2: <message>` to
stderr (exit 1). The environment copies transformers/utils/chat_template_utils.py
(_compile_jinja_template): ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks,
loopcontrols and the {% generation %} tag; tojson is json.dumps with ensure_ascii=False;
raise_exception and strftime_now (here of NOW_UNIX in UTC, default 2026-01-15T10:00:00Z).
"""
import json
import sys
import time

import jinja2
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment


class AssistantTracker(Extension):
    # Only the syntax: the body of {% generation %} renders as if the tag were absent.
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def main():
    tmpl_path, ctx_path = sys.argv[1], sys.argv[2]
    now = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit() else 1768471200

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return time.strftime(fmt, time.gmtime(now))

    # --mutable: jinja2's plain SandboxedEnvironment, which lets list.append and friends run
    sandbox = SandboxedEnvironment if "--mutable" in sys.argv[4:] else ImmutableSandboxedEnvironment
    env = sandbox(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    with open(tmpl_path, encoding="utf-8") as f:
        source = f.read()
    with open(ctx_path, encoding="utf-8") as f:
        ctx = json.load(f)
    try:
        out = env.from_string(source).render(**ctx)
    except Exception as e:  # the template's own message, as transformers raises it
        sys.stderr.write("jinja2: %s\n" % e)
        return 1
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
