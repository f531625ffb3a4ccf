/* fuzz_gguf.c -- the GGUF metadata reader (src/store/gguf_info.c) on arbitrary files.
 *
 * The input is the file. gguf_info_read takes a path, so the bytes go into one memfd per
 * process, read through /proc/self/fd/N (no disk, nothing left behind). A file that reads
 * must describe itself consistently: counts match, strings are NUL-terminated, short
 * numeric arrays are inlined; every key can be found again. llama.cpp's own parser
 * (gguf.cpp) runs underneath, uninstrumented: a crash there still shows. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "store/gguf_info.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        fd = memfd_create("bellows-fuzz-gguf", 0);
        if (fd < 0)
            return 0;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        return 0;
    struct gguf_info *info = NULL;
    struct bw_err err = {0};
    int rc = gguf_info_read(path, &info, &err);
    if (rc != BW_OK) {
        FUZZ_CHECK(info == NULL && err.msg[0]);
        return 0;
    }
    FUZZ_CHECK(info->file_size == size);
    FUZZ_CHECK(info->arch && info->quant && info->n_capabilities <= 2);
    FUZZ_CHECK(memchr(info->param_size, 0, sizeof info->param_size));
    for (size_t i = 0; i < info->n_kvs; i++) {
        const struct gguf_info_kv *kv = &info->kvs[i];
        FUZZ_CHECK(kv->key && kv->type_name);
        FUZZ_CHECK((kv->kind == GGUF_INFO_STRING) == (kv->str != NULL));
        if (kv->kind == GGUF_INFO_ARRAY && kv->nums)
            FUZZ_CHECK(kv->n_elems <= GGUF_INFO_ARRAY_INLINE_MAX);
        const struct gguf_info_kv *found = gguf_info_find(info, kv->key);
        FUZZ_CHECK(found && !strcmp(found->key, kv->key));
    }
    gguf_info_free(info);
    return 0;
}
