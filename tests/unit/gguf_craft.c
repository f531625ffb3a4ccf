/* gguf_craft.c -- see gguf_craft.h. */
#include "gguf_craft.h"

#include <stdlib.h>
#include <string.h>

enum { T_U8 = 0, T_U32 = 4, T_F32 = 6, T_STR = 8, T_ARR = 9, T_U64 = 10 };

struct buf {
    uint8_t *b;
    size_t n, cap;
    int oom;
};

static void put(struct buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *nb = realloc(b->b, cap);
        if (!nb) {
            b->oom = 1;
            return;
        }
        b->b = nb, b->cap = cap;
    }
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void u32(struct buf *b, uint32_t v) { put(b, &v, 4); } /* GGUF is little-endian, as this host */
static void u64(struct buf *b, uint64_t v) { put(b, &v, 8); }
static void str(struct buf *b, const char *s)
{
    u64(b, strlen(s));
    put(b, s, strlen(s));
}

/* key, then its type; records both offsets. */
static void key(struct buf *b, struct craft_layout *l, int i, const char *k, uint32_t type)
{
    l->kv_key_len[i] = b->n;
    str(b, k);
    l->kv_type[i] = b->n;
    u32(b, type);
    l->kv_val[i] = b->n;
}

static void kv_str(struct buf *b, struct craft_layout *l, int i, const char *k, const char *v)
{
    key(b, l, i, k, T_STR);
    str(b, v);
}

static void kv_u32(struct buf *b, struct craft_layout *l, int i, const char *k, uint32_t v)
{
    key(b, l, i, k, T_U32);
    u32(b, v);
}

size_t craft_gguf(const struct craft_opts *o, uint8_t **out, struct craft_layout *l)
{
    struct buf b = {0};
    memset(l, 0, sizeof *l);
    put(&b, "GGUF", 4);
    l->version = b.n;
    u32(&b, 3);
    l->n_tensors = b.n;
    u64(&b, CRAFT_NT);
    l->n_kv = b.n;
    u64(&b, CRAFT_NKV);

    if (o->arch_as_u32)
        kv_u32(&b, l, CK_ARCH, "general.architecture", 7);
    else
        kv_str(&b, l, CK_ARCH, "general.architecture", "llama");
    kv_str(&b, l, CK_NAME, o->dup_key ? "general.architecture" : "general.name", o->dup_key ? "llama" : "tiny");
    if (o->file_type_as_str)
        kv_str(&b, l, CK_FTYPE, "general.file_type", "F32");
    else
        kv_u32(&b, l, CK_FTYPE, "general.file_type", 0);
    if (o->ctx_as_str)
        kv_str(&b, l, CK_CTX, "llama.context_length", "256");
    else
        kv_u32(&b, l, CK_CTX, "llama.context_length", 256);
    kv_u32(&b, l, CK_EMBD, "llama.embedding_length", 8);
    if (o->block_count_f32) {
        key(&b, l, CK_BLOCKS, "llama.block_count", T_F32);
        float f = 1.5f;
        put(&b, &f, 4);
    } else {
        kv_u32(&b, l, CK_BLOCKS, "llama.block_count", 1);
    }
    key(&b, l, CK_HEADS, "llama.attention.head_count", T_ARR);
    if (o->nested_array) {
        u32(&b, T_ARR), u64(&b, 1);
        u32(&b, T_U32), u64(&b, 1), u32(&b, 2);
    } else if (o->head_count_strs) {
        u32(&b, T_STR), u64(&b, 1), str(&b, "two");
    } else {
        u32(&b, T_U32), u64(&b, 1), u32(&b, 2);
    }
    kv_u32(&b, l, CK_HEADS_KV, "llama.attention.head_count_kv", 1);
    if (o->tokens_as_u32) {
        kv_u32(&b, l, CK_TOKENS, "tokenizer.ggml.tokens", 3);
    } else {
        key(&b, l, CK_TOKENS, "tokenizer.ggml.tokens", T_ARR);
        u32(&b, T_STR), u64(&b, 3), str(&b, "a"), str(&b, "b"), str(&b, "<s>");
    }
    if (o->template_as_arr) {
        key(&b, l, CK_TEMPLATE, "tokenizer.chat_template", T_ARR);
        u32(&b, T_U8), u64(&b, 2), put(&b, "{}", 2);
    } else {
        kv_str(&b, l, CK_TEMPLATE, "tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}");
    }
    uint64_t align = o->alignment > 0 ? (uint64_t)o->alignment : 32;
    if (o->alignment < 0)
        kv_str(&b, l, CK_ALIGN, "general.alignment", "32");
    else
        kv_u32(&b, l, CK_ALIGN, "general.alignment", (uint32_t)align);
    if (o->alignment <= 0 || (align & (align - 1)))
        align = 32; /* what the data is laid out with; the key may say otherwise */

    static const char *names[CRAFT_NT] = {"token_embd.weight", "output_norm.weight"};
    static const uint64_t dims[CRAFT_NT][2] = {{8, 3}, {8, 1}};
    static const uint32_t ndims[CRAFT_NT] = {2, 1};
    uint64_t offs[CRAFT_NT] = {0, 96};
    for (int t = 0; t < CRAFT_NT; t++) {
        l->ti_name_len[t] = b.n;
        str(&b, o->dup_tensor ? names[0] : names[t]);
        l->ti_ndims[t] = b.n;
        u32(&b, ndims[t]);
        l->ti_dim0[t] = b.n;
        for (uint32_t d = 0; d < ndims[t]; d++)
            u64(&b, dims[t][d]);
        l->ti_type[t] = b.n;
        u32(&b, t == 1 ? o->tensor_type : 0);
        l->ti_offset[t] = b.n;
        u64(&b, offs[t]);
    }
    static const uint8_t zero[64];
    put(&b, zero, (align - b.n % align) % align);
    l->data = b.n;
    for (int i = 0; i < 4; i++) /* 96 + 32 bytes of weights: small numbers */
        put(&b, zero, 32);
    if (b.oom) {
        free(b.b);
        return 0;
    }
    l->size = b.n;
    *out = b.b;
    return b.n;
}
