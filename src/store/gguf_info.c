/* gguf_info.c -- see gguf_info.h.
 *
 * Two passes: gguf.h parses the header into its own context (it rejects bad magic,
 * lengths that overrun the file, invalid types and misaligned offsets), then everything we
 * keep is copied out into plain structs so the gguf_context can be freed at once. */
#include "store/gguf_info.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "store/gguf_mem.h"

/* ---- pure helpers ---------------------------------------------------------------------- */

const char *gguf_info_ftype_name(int32_t file_type)
{
    /* Indexed by LLAMA_FTYPE_*; NULL where llama.cpp has no such type (4-6, 33-35).
     * Spelled as Ollama's fs/ggml FileType.String() spells them. */
    static const char *const names[] = {
        "F32", "F16", "Q4_0", "Q4_1", NULL, NULL, NULL, "Q8_0", "Q5_0", "Q5_1",
        "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K",
        "IQ2_XXS", "IQ2_XS", "Q2_K_S", "IQ3_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ3_M",
        "IQ2_S", "IQ2_M", "IQ4_XS", "IQ1_M", "BF16", NULL, NULL, NULL, "TQ1_0", "TQ2_0",
        "MXFP4", "NVFP4", "Q1_0", "Q2_0",
    };
    if (file_type < 0 || (size_t)file_type >= sizeof names / sizeof names[0] || !names[file_type])
        return "unknown";
    return names[file_type];
}

void gguf_info_human_number(uint64_t n, char *buf, size_t len)
{
    /* Ollama's format.HumanNumber (mid-2025): billions with one decimal, millions with two,
     * no decimals when the value is whole, thousands rounded. */
    if (n >= 1000000000ULL) {
        double v = (double)n / 1e9;
        snprintf(buf, len, v == floor(v) ? "%.0fB" : "%.1fB", v);
    } else if (n >= 1000000ULL) {
        double v = (double)n / 1e6;
        snprintf(buf, len, v == floor(v) ? "%.0fM" : "%.2fM", v);
    } else if (n >= 1000ULL) {
        snprintf(buf, len, "%.0fK", (double)n / 1e3);
    } else {
        snprintf(buf, len, "%llu", (unsigned long long)n);
    }
}

/* ---- copying values out of the gguf_context -------------------------------------------- */

static enum gguf_info_kind kind_of(enum gguf_type t)
{
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32: case GGUF_TYPE_UINT64:
        return GGUF_INFO_UINT;
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
        return GGUF_INFO_INT;
    case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64:
        return GGUF_INFO_FLOAT;
    case GGUF_TYPE_BOOL:
        return GGUF_INFO_BOOL;
    case GGUF_TYPE_STRING:
        return GGUF_INFO_STRING;
    default:
        return GGUF_INFO_ARRAY;
    }
}

/* Element i of a numeric array of type T starting at p, as a double. */
static double arr_num(enum gguf_type t, const void *p, size_t i)
{
    switch (t) {
    case GGUF_TYPE_UINT8: return ((const uint8_t *)p)[i];
    case GGUF_TYPE_INT8: return ((const int8_t *)p)[i];
    case GGUF_TYPE_UINT16: return ((const uint16_t *)p)[i];
    case GGUF_TYPE_INT16: return ((const int16_t *)p)[i];
    case GGUF_TYPE_UINT32: return ((const uint32_t *)p)[i];
    case GGUF_TYPE_INT32: return ((const int32_t *)p)[i];
    case GGUF_TYPE_FLOAT32: return ((const float *)p)[i];
    case GGUF_TYPE_UINT64: return (double)((const uint64_t *)p)[i];
    case GGUF_TYPE_INT64: return (double)((const int64_t *)p)[i];
    case GGUF_TYPE_FLOAT64: return ((const double *)p)[i];
    case GGUF_TYPE_BOOL: return ((const int8_t *)p)[i] != 0;
    default: return 0;
    }
}

/* Fill kv from key id; returns BW_OK or BW_ENOMEM. Only type-checked getters are used. */
static int copy_kv(const struct gguf_context *g, int64_t id, struct gguf_info_kv *kv)
{
    enum gguf_type t = gguf_get_kv_type(g, id);
    kv->key = strdup(gguf_get_key(g, id));
    if (!kv->key)
        return BW_ENOMEM;
    kv->kind = kind_of(t);
    kv->type_name = gguf_type_name(t);
    switch (t) {
    case GGUF_TYPE_UINT8: kv->u = gguf_get_val_u8(g, id); break;
    case GGUF_TYPE_UINT16: kv->u = gguf_get_val_u16(g, id); break;
    case GGUF_TYPE_UINT32: kv->u = gguf_get_val_u32(g, id); break;
    case GGUF_TYPE_UINT64: kv->u = gguf_get_val_u64(g, id); break;
    case GGUF_TYPE_INT8: kv->i = gguf_get_val_i8(g, id); break;
    case GGUF_TYPE_INT16: kv->i = gguf_get_val_i16(g, id); break;
    case GGUF_TYPE_INT32: kv->i = gguf_get_val_i32(g, id); break;
    case GGUF_TYPE_INT64: kv->i = gguf_get_val_i64(g, id); break;
    case GGUF_TYPE_FLOAT32: kv->f = gguf_get_val_f32(g, id); break;
    case GGUF_TYPE_FLOAT64: kv->f = gguf_get_val_f64(g, id); break;
    case GGUF_TYPE_BOOL: kv->b = gguf_get_val_bool(g, id); break;
    case GGUF_TYPE_STRING:
        if (!(kv->str = strdup(gguf_get_val_str(g, id))))
            return BW_ENOMEM;
        break;
    case GGUF_TYPE_ARRAY: {
        enum gguf_type et = gguf_get_arr_type(g, id);
        kv->elem_kind = kind_of(et);
        kv->n_elems = gguf_get_arr_n(g, id);
        bool numeric = kv->elem_kind != GGUF_INFO_STRING && kv->elem_kind != GGUF_INFO_ARRAY;
        if (numeric && kv->n_elems > 0 && kv->n_elems <= GGUF_INFO_ARRAY_INLINE_MAX) {
            const void *data = gguf_get_arr_data(g, id);
            if (!(kv->nums = malloc(kv->n_elems * sizeof *kv->nums)))
                return BW_ENOMEM;
            for (size_t i = 0; i < kv->n_elems; i++)
                kv->nums[i] = arr_num(et, data, i);
        }
        break;
    }
    default:
        break;
    }
    return BW_OK;
}

/* ---- reading the hyper-parameters from the copied key/values --------------------------- */

const struct gguf_info_kv *gguf_info_find(const struct gguf_info *info, const char *key)
{
    for (size_t i = 0; i < info->n_kvs; i++)
        if (!strcmp(info->kvs[i].key, key))
            return &info->kvs[i];
    return NULL;
}

static const struct gguf_info_kv *find_arch(const struct gguf_info *info, const char *suffix)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", info->arch, suffix);
    return gguf_info_find(info, key);
}

/* A non-negative integer value, or the maximum of a short integer array; 0 otherwise. */
static uint64_t kv_uint(const struct gguf_info_kv *kv)
{
    if (!kv)
        return 0;
    switch (kv->kind) {
    case GGUF_INFO_UINT: return kv->u;
    case GGUF_INFO_INT: return kv->i > 0 ? (uint64_t)kv->i : 0;
    case GGUF_INFO_ARRAY: {
        double m = 0;
        for (size_t i = 0; kv->nums && i < kv->n_elems; i++)
            m = kv->nums[i] > m ? kv->nums[i] : m;
        /* a float past 2^64 (a corrupt file) does not convert: that is UB, not a cap */
        return m >= 0x1p64 ? UINT64_MAX : (uint64_t)m;
    }
    default: return 0;
    }
}

static void derive(struct gguf_info *info)
{
    info->n_ctx_train = kv_uint(find_arch(info, "context_length"));
    info->n_embd = kv_uint(find_arch(info, "embedding_length"));
    info->n_layer = kv_uint(find_arch(info, "block_count"));
    info->n_head = kv_uint(find_arch(info, "attention.head_count"));
    const struct gguf_info_kv *hkv = find_arch(info, "attention.head_count_kv");
    info->n_head_kv = hkv ? kv_uint(hkv) : info->n_head;
    uint64_t head_dim = info->n_head ? info->n_embd / info->n_head : 0;
    const struct gguf_info_kv *kl = find_arch(info, "attention.key_length");
    const struct gguf_info_kv *vl = find_arch(info, "attention.value_length");
    info->key_length = kl ? kv_uint(kl) : head_dim;
    info->value_length = vl ? kv_uint(vl) : head_dim;

    /* What grows with the context: the full-attention layers (info->shape, read with the
     * gguf_context in gguf_info_read), in f16. */
    struct estimate_memory mem;
    estimate_memory_of(&info->shape, ESTIMATE_KV_F16, &mem);
    info->kv_bytes_per_token = estimate_grow_bytes_per_cell(&mem, 0);

    const struct gguf_info_kv *ft = gguf_info_find(info, "general.file_type");
    info->file_type = ft && (ft->kind == GGUF_INFO_UINT || ft->kind == GGUF_INFO_INT) ? (int32_t)kv_uint(ft) : -1;
    info->quant = gguf_info_ftype_name(info->file_type);

    /* Ollama's rule (server/images.go): a pooling type makes it an embedding model. */
    const struct gguf_info_kv *pool = find_arch(info, "pooling_type");
    info->has_pooling = pool != NULL;
    info->pooling_type = pool ? (int32_t)kv_uint(pool) : -1;
    info->capabilities[0] = info->has_pooling ? "embedding" : "completion";
    info->n_capabilities = 1;

    gguf_info_human_number(info->n_params, info->param_size, sizeof info->param_size);
}

/* ---- the file ------------------------------------------------------------------------- */

void gguf_info_free(struct gguf_info *info)
{
    if (!info)
        return;
    for (size_t i = 0; i < info->n_kvs; i++) {
        free(info->kvs[i].key);
        free(info->kvs[i].str);
        free(info->kvs[i].nums);
    }
    free(info->kvs);
    free(info->arch);
    free(info->name);
    free(info->chat_template);
    free(info);
}

/* Check the file is there, non-empty and starts with the magic: gguf_init_from_file()
 * would refuse too, but only with a log line, and the caller deserves a reason. */
static int check_magic(const char *path, uint64_t *size, struct bw_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bw_errf(err, errno == ENOENT ? BW_ENOTFOUND : BW_EIO, "cannot open %.180s: %s", path, strerror(errno));
    struct stat st;
    char magic[4];
    int rc = BW_OK;
    if (fstat(fd, &st) != 0)
        rc = bw_errf(err, BW_EIO, "cannot stat %.180s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = bw_errf(err, BW_EINVAL, "%.180s is not a GGUF file (not a regular file)", path);
    else if (st.st_size == 0)
        rc = bw_errf(err, BW_EINVAL, "%.180s is not a GGUF file (empty)", path);
    else if (pread(fd, magic, 4, 0) != 4 || memcmp(magic, GGUF_MAGIC, 4))
        rc = bw_errf(err, BW_EINVAL, "%.180s is not a GGUF file (no GGUF magic)", path);
    *size = (uint64_t)st.st_size;
    close(fd);
    return rc;
}

int gguf_info_read(const char *path, struct gguf_info **out, struct bw_err *err)
{
    uint64_t file_size = 0;
    int rc = check_magic(path, &file_size, err);
    if (rc)
        return rc;

    struct gguf_init_params ip = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = gguf_init_from_file(path, ip);
    if (!g)
        return bw_errf(err, BW_EINVAL, "%.180s is not a GGUF file (corrupt or unsupported header)", path);

    struct gguf_info *info = calloc(1, sizeof *info);
    int64_t n_kv = gguf_get_n_kv(g);
    if (!info || !(info->kvs = calloc(n_kv > 0 ? (size_t)n_kv : 1, sizeof *info->kvs))) {
        rc = bw_errf(err, BW_ENOMEM, "out of memory reading %.180s", path);
        goto fail;
    }
    info->version = gguf_get_version(g);
    info->file_size = file_size;

    /* Tensors: sizes, element counts, and that the data really is in the file (a truncated
     * download parses fine up to here, since gguf reads no tensor data with no_alloc). */
    uint64_t data_end = gguf_get_data_offset(g);
    info->n_tensors = (uint64_t)gguf_get_n_tensors(g);
    for (int64_t t = 0; t < (int64_t)info->n_tensors; t++) {
        const int64_t *ne = gguf_get_tensor_ne(g, t);
        uint64_t n = 1;
        for (int d = 0; d < GGML_MAX_DIMS; d++)
            n *= (uint64_t)ne[d];
        size_t bytes = gguf_get_tensor_size(g, t);
        info->n_params += n;
        info->tensor_bytes += bytes;
        uint64_t end = gguf_get_data_offset(g) + gguf_get_tensor_offset(g, t) + bytes;
        data_end = end > data_end ? end : data_end;
    }
    if (data_end > file_size) {
        rc = bw_errf(err, BW_EINVAL, "%.150s is not a GGUF file (truncated: tensor data needs %llu bytes, the file has %llu)",
                     path, (unsigned long long)data_end, (unsigned long long)file_size);
        goto fail;
    }

    for (int64_t i = 0; i < n_kv; i++) {
        if (copy_kv(g, i, &info->kvs[info->n_kvs++]) != BW_OK) {
            rc = bw_errf(err, BW_ENOMEM, "out of memory reading %.180s", path);
            goto fail;
        }
    }

    const struct gguf_info_kv *arch = gguf_info_find(info, "general.architecture");
    const struct gguf_info_kv *name = gguf_info_find(info, "general.name");
    const struct gguf_info_kv *tmpl = gguf_info_find(info, "tokenizer.chat_template");
    info->arch = strdup(arch && arch->kind == GGUF_INFO_STRING ? arch->str : "");
    if (name && name->kind == GGUF_INFO_STRING)
        info->name = strdup(name->str);
    if (tmpl && tmpl->kind == GGUF_INFO_STRING)
        info->chat_template = strdup(tmpl->str);
    if (!info->arch || (name && name->kind == GGUF_INFO_STRING && !info->name) ||
        (tmpl && tmpl->kind == GGUF_INFO_STRING && !info->chat_template)) {
        rc = bw_errf(err, BW_ENOMEM, "out of memory reading %.180s", path);
        goto fail;
    }
    gguf_mem_shape(g, -1, &info->shape);
    derive(info);
    gguf_free(g);
    *out = info;
    return BW_OK;

fail:
    gguf_free(g);
    gguf_info_free(info);
    return rc;
}
