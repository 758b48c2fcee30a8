/*
 * libFuzzer target: the restore manifest parser (jm__manifest_parse), on
 * a buffer without a NUL. An accepted manifest must print back to text
 * that parses to the same manifest; a refused one must say why with one
 * of the documented codes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const jm__manifest *a, const jm__manifest *b)
{
    if (a->format_version != b->format_version || strcmp(a->ns, b->ns) != 0 ||
        strcmp(a->table, b->table) != 0 || a->table_type != b->table_type ||
        a->row_count != b->row_count || a->compression != b->compression ||
        a->created_at != b->created_at || a->nfiles != b->nfiles)
        return 0;
    for (size_t i = 0; i < a->nfiles; i++)
        if (strcmp(a->files[i].name, b->files[i].name) != 0 ||
            a->files[i].bytes != b->files[i].bytes ||
            strcmp(a->files[i].sha256, b->files[i].sha256) != 0)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: a read past the end is an ASan report. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    jm__manifest *m = NULL;
    char err[128];
    err[0] = '\0';
    int rc = jm__manifest_parse(buf, size, &m, err, sizeof err);
    if (rc == JM_OK) {
        if (!m || m->nfiles != JM_BACKUP_DATA_FILES || m->row_count < 0)
            abort();
        if (!jm__manifest_find(m, JM_BACKUP_META_FILE) ||
            !jm__manifest_find(m, jm__backup_rows_file(m->compression)))
            abort();
        char *text = jm__manifest_print(m);
        if (text) {
            jm__manifest *again = NULL;
            char err2[128];
            if (jm__manifest_parse(text, strlen(text), &again, err2, sizeof err2) != JM_OK ||
                !same(m, again))
                abort();
            jm__manifest_free(again);
            cJSON_free(text);
        }
        jm__manifest_free(m);
    } else {
        if (m || !err[0] || !memchr(err, '\0', sizeof err))
            abort();
        if (rc != JM_EINVAL && rc != JM_EJSON && rc != JM_ETOOBIG && rc != JM_ENOMEM)
            abort();
    }
    free(buf);
    return 0;
}
