/* gguf_craft.h -- a tiny, valid GGUF written byte by byte, with the offset of every field
 * recorded, so a test can break exactly one thing (tests/unit/test_gguf_broken.c).
 *
 * The file: GGUF v3, 11 key/values (architecture llama, name, file_type, context and
 * embedding lengths, block count, a per-layer head_count array, head_count_kv, a 3-token
 * string array, a chat template, general.alignment 32), two f32 tensors (token_embd.weight
 * [8,3] at data offset 0, output_norm.weight [8] at 96), data aligned to 32. Options change
 * a known key's type or value while keeping the file well-formed. Header only; no I/O. */
#ifndef BELLOWS_TEST_GGUF_CRAFT_H
#define BELLOWS_TEST_GGUF_CRAFT_H

#include <stddef.h>
#include <stdint.h>

#define CRAFT_NKV 11
#define CRAFT_NT 2

struct craft_opts {
    int arch_as_u32;          /* general.architecture written as a u32 */
    int file_type_as_str;     /* general.file_type as a string */
    int ctx_as_str;           /* llama.context_length as a string */
    int head_count_strs;      /* llama.attention.head_count as an array of strings */
    int block_count_f32;      /* llama.block_count as an f32 */
    int tokens_as_u32;        /* tokenizer.ggml.tokens as a u32, not an array */
    int template_as_arr;      /* tokenizer.chat_template as an array of u8 */
    int nested_array;         /* head_count as an array of arrays */
    int64_t alignment;        /* general.alignment value (0: 32); < 0: written as a string */
    int dup_key;              /* general.name renamed to a second general.architecture */
    int dup_tensor;           /* both tensors named token_embd.weight */
    uint32_t tensor_type;     /* ggml type of the second tensor (0: f32) */
};

struct craft_layout {
    size_t version, n_tensors, n_kv;       /* offsets of the header's fields */
    size_t kv_key_len[CRAFT_NKV];          /* u64 length of each key */
    size_t kv_type[CRAFT_NKV];             /* u32 type of each value */
    size_t kv_val[CRAFT_NKV];              /* the value (string: its u64 length; array: u32
                                              element type, then u64 count) */
    size_t ti_name_len[CRAFT_NT], ti_ndims[CRAFT_NT], ti_dim0[CRAFT_NT], ti_type[CRAFT_NT],
        ti_offset[CRAFT_NT];
    size_t data;                           /* start of the tensor data */
    size_t size;
};

/* Index of a key/value in the layout. */
enum { CK_ARCH, CK_NAME, CK_FTYPE, CK_CTX, CK_EMBD, CK_BLOCKS, CK_HEADS, CK_HEADS_KV, CK_TOKENS, CK_TEMPLATE,
       CK_ALIGN };

/* A malloc'd file in *out (its layout in *lay); returns its size, 0 when out of memory. */
size_t craft_gguf(const struct craft_opts *o, uint8_t **out, struct craft_layout *lay);

#endif
