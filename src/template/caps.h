/* caps.h -- what a chat template can do, read from its text: the capabilities /api/show
 * reports (tools, thinking, insert) and whether a TEMPLATE is an Ollama Go template
 * rather than Jinja (issue 10 item 3).
 *
 * Pure: no I/O, no allocation, no libllama; thread-safe (no state). It reads the text, it
 * never renders it: a template that would fail to render still gets its flags.
 *
 * DESIGN
 * Ollama derives a model's capabilities from its template: `tools` when the template
 * uses the variable `tools`, `insert` when it uses `suffix`, `thinking` when it has
 * thinking tags. The Jinja equivalents, checked on the 68 templates of the pinned
 * llama.cpp (tests/unit/test_caps.c lists each one's flags, checked by hand):
 *   - The text is split as Jinja's lexer splits it: plain text, {# comments #} (ignored),
 *     and the code of {{ ... }} / {% ... %} (brackets and string literals balanced, so a
 *     "}}" inside a string does not end a tag; {% raw %} is text).
 *   - tools:  `tools` as a variable in code (not `message.tools`, not `xml_tools`, not in
 *     a string or a comment).
 *   - insert: `suffix` as a variable in code (Ollama's .Suffix: a fill-in-the-middle template).
 *   - thinking: any of
 *       a switch or field in code: an identifier (variable or attribute) containing
 *       "think" or "reason" (enable_thinking, thinking, reasoning_effort, message.thinking,
 *       message.reasoning_content, thinking_budget, ...), or a string literal that is
 *       such an identifier (message['reasoning_content'], message.get('reasoning'));
 *       a thinking marker in text or in a string: "<think" or "think>" (<think>,
 *       </think>, <seed:think>, <mm:think>), "[THINK]", "THINKING|>" (<|START_THINKING|>),
 *       "|think|" (<|think|>), "<thinking>", "<|channel|>analysis" (gpt-oss).
 *     Prose is not a marker: "explain your reasoning" in a system prompt is neither an
 *     identifier nor a tag.
 *   - think effort (not a capability of its own): the template reads `reasoning_effort`,
 *     so `think` may be "low" | "medium" | "high" (gpt-oss style).
 * `completion` (every model that is not an embedding model) and `embedding` come from the
 * GGUF, not from the template: the caller adds them. */
#ifndef BELLOWS_TEMPLATE_CAPS_H
#define BELLOWS_TEMPLATE_CAPS_H

#include <stdbool.h>

#define TEMPLATE_CAP_TOOLS 0x1u        /* "tools" */
#define TEMPLATE_CAP_THINKING 0x2u     /* "thinking" */
#define TEMPLATE_CAP_INSERT 0x4u       /* "insert" */
#define TEMPLATE_CAP_THINK_EFFORT 0x8u /* takes reasoning_effort: think "low"|"medium"|"high" */

/* Is TEXT an Ollama Go template ({{ .Prompt }}, {{- range .Messages }}, {{ if .System }},
 * {{ end }}, {{ $x := ... }}, a Go comment action) rather than Jinja? True when at least one
 * {{ }} action starts the way only Go's text/template starts one (a field `.X`, a variable
 * `$x`, a comment, or one of if / range / with / else / end / define / template / block)
 * and the text has no Jinja statement or comment ({% ... %}, {# ... #}). NULL, "" and plain
 * text with no action are not Go templates. */
bool template_is_go(const char *text);

/* The TEMPLATE_CAP_* flags of a Jinja chat template (see DESIGN). NULL or "" gives 0. */
unsigned template_caps(const char *jinja_text);

#endif
