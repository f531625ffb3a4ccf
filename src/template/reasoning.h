/* reasoning.h -- split the reasoning a thinking model writes from its answer, streamed.
 *
 * A thinking model writes its reasoning first, between markers its chat template knows
 * (`<think>…</think>` and friends, or gpt-oss's Harmony channels), then the answer. This
 * module finds which markers a template uses (reasoning_detect) and then turns the stream
 * of generated text into pieces marked "thinking" or "answer" (reasoning_feed), without
 * the markers. It does not decide whether a model may think (that is the template's
 * capability, api side) nor render anything.
 *
 * PURE: no I/O, no libllama, no allocation. Not thread-safe: one struct reasoning_split per
 * sequence, used by the thread that owns the sequence (the runner's engine loop).
 *
 * DESIGN
 * Tag formats (one open and one close marker):
 *     <think>…</think>                Qwen3, QwQ, DeepSeek R1/V3.1+, GLM, MiniMax M2, Kimi
 *                                     K2-Thinking, SmolLM3, Nemotron, Granite, …
 *     <seed:think>…</seed:think>      ByteDance Seed-OSS
 *     <mm:think>…</mm:think>          MiniMax M3
 *     [THINK]…[/THINK]                Mistral Magistral / Ministral reasoning
 *     <|START_THINKING|>…<|END_THINKING|>   Command R7B, Command A
 *     <|channel>thought…<channel|>    Gemma 4
 * The reasoning is recognised only at the start of the generation (after leading
 * whitespace), as llama.cpp and Ollama do: a marker later in the answer is answer text.
 * When the rendered prompt already ends with the open marker (the template opened the
 * block in its generation prompt: Qwen3 with enable_thinking, DeepSeek R1, QwQ, GLM,
 * Command R7B, …), the generation starts inside the reasoning; a repeated open marker
 * right at its start is dropped. Whitespace right after an open marker and right after
 * the close marker is dropped (the answer never starts with the blank line that follows
 * `</think>`). Reasoning that is never closed stays reasoning to the end.
 *
 * Harmony (gpt-oss): the generation is a series of messages, each a header
 * `[<|start|>assistant]<|channel|>NAME[ …]<|message|>` then text up to `<|end|>`,
 * `<|return|>` or `<|call|>`. The analysis channel is reasoning, every other channel
 * (final, commentary) is answer. Text that cannot be a header is answer text as written;
 * a header still unfinished when the stream ends is dropped. With cfg.calls (the request
 * has tools), a message whose header names a function recipient (`to=functions.NAME`, in
 * the role or the channel part) is a tool call: it is passed on as answer text
 *     REASONING_CALL_OPEN "functions.NAME" REASONING_CALL_ARGS <the message> REASONING_CALL_CLOSE
 * whatever its channel, for template/toolcall.h to read (closed at the end of the stream
 * too: `<|call|>` ends the generation and is not rendered).
 *
 * Streaming: bytes that could still become a marker are held (at most the marker's length
 * minus one; a Harmony header at most 200 bytes), as is an incomplete UTF-8 sequence at the
 * end of a piece, so no emitted piece splits a character or a marker, whatever the piece
 * boundaries. Everything else is emitted at once; each reasoning_feed() call ends with its
 * output handed to the callback (pieces of the same kind coalesced). */
#ifndef BELLOWS_REASONING_H
#define BELLOWS_REASONING_H

#include <stdbool.h>
#include <stddef.h>

enum reasoning_format {
    REASONING_NONE = 0, /* no splitting: everything is answer */
    REASONING_TAGS,     /* open ... close markers */
    REASONING_HARMONY,  /* gpt-oss channels */
};

struct reasoning_cfg {
    enum reasoning_format format;
    const char *name;          /* "none", "think", "seed", "minimax", "mistral", "command-r",
                                  "gemma4", "harmony" (static strings) */
    const char *open, *close;  /* REASONING_TAGS: the markers (static strings), else NULL */
    bool starts_inside;        /* the generation begins inside the reasoning */
    bool calls;                /* Harmony: pass function calls on (set by the caller, not by
                                  reasoning_detect: only requests with tools want them) */
};

/* How a Harmony function call is passed on as answer text (see DESIGN). */
#define REASONING_CALL_OPEN "<|start|>to="
#define REASONING_CALL_ARGS "<|message|>"
#define REASONING_CALL_CLOSE "<|call|>"

/* Decides the format for one request from the template's text and the prompt it rendered.
 *   template_text   the chat template that rendered the prompt (Jinja source), or NULL:
 *                   no template, no splitting.
 *   rendered_prompt the prompt as the model sees it, or NULL: only the format is found
 *                   (what a "thinking" capability check needs).
 *   think           the request's switch: NULL (unset), "true", "false", "low", "medium",
 *                   "high". "false" gives REASONING_NONE unless the prompt itself opened a
 *                   reasoning block (then the text up to the close marker is still
 *                   reasoning). Harmony is parsed whatever think says: gpt-oss always
 *                   writes its analysis channel, and its markers are never answer text.
 * Always fills *out. */
void reasoning_detect(const char *template_text, const char *rendered_prompt, const char *think,
                      struct reasoning_cfg *out);

/* True when a control token whose text is text[0..len) belongs to cfg's markers, so the
 * engine must render it as text (llama.cpp renders control tokens as "" by default;
 * `<|end|>`, `<|START_THINKING|>`, `[THINK]`, … are control tokens in their vocabularies). */
bool reasoning_marker_token(const struct reasoning_cfg *cfg, const char *text, size_t len);

/* Receives one piece: thinking (reasoning) or answer; len > 0, valid UTF-8 when the input
 * was. text is borrowed for the call only. */
typedef void (*reasoning_emit_fn)(void *ud, bool thinking, const char *text, size_t len);

#define REASONING_HOLD_MAX 256
#define REASONING_OUT_MAX 512

/* Caller-provided storage; fields are private to reasoning.c. */
struct reasoning_split {
    struct reasoning_cfg cfg;
    int state;
    bool msg_thinking;              /* Harmony: the current message is analysis */
    bool msg_call;                  /* Harmony: the current message is a function call */
    char hold[REASONING_HOLD_MAX];  /* bytes that may still become a marker */
    size_t n_hold;
    char out[REASONING_OUT_MAX];    /* coalesced output of the current call */
    size_t n_out;
    bool out_thinking;
    reasoning_emit_fn emit;         /* set during a call */
    void *ud;
};

/* Starts a stream with cfg (copied). Cannot fail. */
void reasoning_init(struct reasoning_split *s, const struct reasoning_cfg *cfg);

/* Feeds the next generated bytes; emits what can no longer change, holds the rest.
 * Cannot fail; emit is called zero or more times before it returns. */
void reasoning_feed(struct reasoning_split *s, const char *text, size_t len, reasoning_emit_fn emit, void *ud);

/* The stream ended: emits what is still held (an incomplete marker is text, except an
 * unfinished Harmony header, which is dropped). Feeding after finish is not supported. */
void reasoning_finish(struct reasoning_split *s, reasoning_emit_fn emit, void *ud);

#endif
