/* gbnf_compose.h -- putting GBNF grammars inside larger ones: a grammar's rules under a
 * name prefix (so that several schemas' rules live in one grammar: the tool-call grammar
 * holds each tool's arguments to its own schema), and a grammar that lets a reasoning block
 * finish before another grammar starts (structured output on thinking models).
 *
 * Pure: no I/O, no libllama. Grammars are GBNF text as libllama's parser reads it (rules
 * "name ::= body", names of [a-zA-Z0-9-], string literals, character classes, {m,n}
 * counts, # comments). */
#ifndef BELLOWS_GRAMMAR_GBNF_COMPOSE_H
#define BELLOWS_GRAMMAR_GBNF_COMPOSE_H

/* GRAMMAR with every rule name (defined or used) written PREFIX NAME: "root" becomes
 * PREFIX "root". PREFIX must be made of [a-zA-Z0-9-]. A malloc'd string, or NULL (out of
 * memory, or a PREFIX with other characters). */
char *gbnf_prefix_rules(const char *grammar, const char *prefix);

/* A grammar (root "root") for: any text not containing MARKER, at most MAX_PIECES pieces
 * long (a piece is one character, or a proper prefix of MARKER and one more character; at
 * most 1000), then MARKER, up to 4 blanks, then a text of GRAMMAR (its root "root"). For a
 * prompt that left a reasoning block open (`<think>` at the end of the generation prompt):
 * the model thinks, closes the block, then answers as GRAMMAR says. The text before MARKER
 * never holds MARKER, a lone first character of MARKER at its end, or the first character
 * of MARKER twice in a row. Returns a malloc'd string, or NULL (out of memory, an empty
 * MARKER or one whose first character comes back later in it: the caller then keeps
 * GRAMMAR as it is). */
char *gbnf_after_marker(const char *grammar, const char *marker, int max_pieces);

#endif
