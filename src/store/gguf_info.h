/* gguf_info.h -- what the server needs to know about a GGUF file without loading it.
 *
 * Reads the header (key/values and tensor infos, no tensor data) with llama.cpp's gguf.h,
 * for /api/show (model_info, details, capabilities), /api/tags, `bellows create` (is this
 * file a model at all?) and the scheduler's memory estimate. It never runs a model and
 * never aborts: every typed read checks the value's type first (gguf_get_val_* aborts on
 * a mismatch), and the tensor data must lie inside the file, so a truncated download is
 * caught here rather than as a crash in a runner.
 *
 * Blocking file I/O (a few reads of the header; a tokenizer makes it a few MB). Thread-safe:
 * no shared state. jansson and gguf types stay inside: the result is plain C. */
#ifndef BELLOWS_GGUF_INFO_H
#define BELLOWS_GGUF_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/estimate.h"
#include "util/err.h"

/* The JSON-ish kind of a metadata value. */
enum gguf_info_kind {
    GGUF_INFO_UINT,   /* u8/u16/u32/u64: .u */
    GGUF_INFO_INT,    /* i8/i16/i32/i64: .i */
    GGUF_INFO_FLOAT,  /* f32/f64: .f */
    GGUF_INFO_BOOL,   /* .b */
    GGUF_INFO_STRING, /* .str */
    GGUF_INFO_ARRAY,  /* .elem_kind, .n_elems, and .nums for short numeric arrays */
};

/* Arrays of numbers up to this length are copied into .nums (per-layer head counts,
 * rope sections); longer ones and string arrays (the tokenizer's 150k tokens) are only
 * described by their element kind and count. */
#define GGUF_INFO_ARRAY_INLINE_MAX 256

struct gguf_info_kv {
    char *key;                    /* owned */
    enum gguf_info_kind kind;
    const char *type_name;        /* gguf's name of the stored type ("u32", "str", "arr"), static */
    union {
        uint64_t u;
        int64_t i;
        double f;
        bool b;
    };
    char *str;                    /* GGUF_INFO_STRING: owned, NUL-terminated; else NULL */
    enum gguf_info_kind elem_kind;/* GGUF_INFO_ARRAY: kind of the elements */
    uint64_t n_elems;             /* GGUF_INFO_ARRAY: element count */
    double *nums;                 /* GGUF_INFO_ARRAY of numbers with n_elems <= INLINE_MAX: owned; else NULL */
};

struct gguf_info {
    uint32_t version;             /* GGUF format version */
    uint64_t file_size;           /* bytes on disk */

    char *arch;                   /* general.architecture, owned; "" when absent */
    char *name;                   /* general.name, owned; NULL when absent */
    int32_t file_type;            /* general.file_type (a LLAMA_FTYPE_*), -1 when absent */
    const char *quant;            /* Ollama's level for file_type ("Q8_0", "Q4_K_M"), static; "unknown" */

    /* Hyper-parameters under "<arch>.", 0 when absent. Per-layer arrays give their maximum. */
    uint64_t n_ctx_train;         /* <arch>.context_length */
    uint64_t n_embd;              /* <arch>.embedding_length */
    uint64_t n_layer;             /* <arch>.block_count */
    uint64_t n_head;              /* <arch>.attention.head_count */
    uint64_t n_head_kv;           /* <arch>.attention.head_count_kv, defaults to n_head */
    uint64_t key_length;          /* <arch>.attention.key_length, defaults to n_embd / n_head */
    uint64_t value_length;        /* <arch>.attention.value_length, same default */

    uint64_t n_tensors;
    uint64_t n_params;            /* sum of every tensor's element count */
    char param_size[16];          /* Ollama's human form of n_params: "494.03M", "7.6B" */
    uint64_t tensor_bytes;        /* sum of tensor data sizes: the weights' memory */
    /* The memory kinds (store/gguf_mem.h): element counts of the full-attention and
     * sliding-window caches, recurrent state bytes; sched/estimate.h makes bytes of them. */
    struct estimate_shape shape;
    /* F16 KV cache bytes per token of context of the caches that grow with it: the
     * full-attention layers (n_head_kv x (key_length + value_length) x 2 each; MLA: the
     * latent only), not the sliding-window or recurrent ones. 0 with no attention info. */
    uint64_t kv_bytes_per_token;

    char *chat_template;          /* tokenizer.chat_template, owned; NULL when absent */
    bool has_pooling;             /* <arch>.pooling_type present: an embedding model (Ollama's rule) */
    int32_t pooling_type;         /* its value, -1 when absent */
    const char *capabilities[2];  /* "completion" or "embedding" (static strings) */
    size_t n_capabilities;

    struct gguf_info_kv *kvs;     /* every key/value, in file order; owned */
    size_t n_kvs;
};

/* Read PATH's GGUF header. Returns 0 and sets *out (free with gguf_info_free()), or
 * BW_EINVAL "<path> is not a GGUF file (<why>)" for an empty, truncated, corrupt or
 * non-GGUF file, BW_ENOTFOUND / BW_EIO when it cannot be opened or read, BW_ENOMEM.
 * *out is untouched on error. */
int gguf_info_read(const char *path, struct gguf_info **out, struct bw_err *err);
void gguf_info_free(struct gguf_info *info);

/* Find a key; returns a pointer into info->kvs (valid until gguf_info_free) or NULL. */
const struct gguf_info_kv *gguf_info_find(const struct gguf_info *info, const char *key);

/* Pure helpers, exposed for tests and for the API layer. */
/* Ollama's quantization level name for a LLAMA_FTYPE_* value; "unknown" when it has none. */
const char *gguf_info_ftype_name(int32_t file_type);
/* Ollama's format.HumanNumber: "494.03M", "7.6B", "7B", "135K", "999"; buf of len >= 16. */
void gguf_info_human_number(uint64_t n, char *buf, size_t len);

#endif
