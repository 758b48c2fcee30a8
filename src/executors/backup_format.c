/*
 * The backup format: manifest writer and strict parser, row lines, and the
 * metadata check (see backup_format.h). A manifest and every row line are
 * untrusted input to a restore, so the parsers accept exactly what the
 * writers produce and say precisely what else they found.
 */
#include "backup_format.h"

#include <stdio.h>
#include <string.h>

#include "json_check.h"
#include "exec_util.h"

static const char *const compression_names[] = {"none", "zstd"};

const char *jm__backup_compression_name(jm__backup_compression c)
{
    return c == JM_BACKUP_ZSTD ? compression_names[1] : compression_names[0];
}

int jm__backup_compression_parse(const char *s, jm__backup_compression *out)
{
    if (s && strcmp(s, "none") == 0) {
        *out = JM_BACKUP_NONE;
        return 0;
    }
    if (s && strcmp(s, "zstd") == 0) {
        *out = JM_BACKUP_ZSTD;
        return 0;
    }
    return -1;
}

const char *jm__backup_rows_file(jm__backup_compression c)
{
    return c == JM_BACKUP_ZSTD ? JM_BACKUP_ROWS_ZSTD_FILE : JM_BACKUP_ROWS_FILE;
}

int jm__backup_file_name_valid(const char *name)
{
    size_t n = strnlen(name, JM_BACKUP_FILE_NAME_MAX + 1);
    if (n == 0 || n > JM_BACKUP_FILE_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* An integral JSON number in [min, max]; max is at most JM_BACKUP_MAX_INT,
 * so the double holds it exactly. */
static int json_int(const cJSON *v, int64_t min, int64_t max, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (d != d || d < (double)min || d > (double)max || d != (double)(int64_t)d)
        return -1;
    *out = (int64_t)d;
    return 0;
}

static int sha_hex_valid(const char *s)
{
    for (int i = 0; i < JM_SHA256_HEX_SIZE - 1; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[JM_SHA256_HEX_SIZE - 1] == '\0';
}

/* Parses exactly text[0..len) as one JSON value: trailing bytes (a second
 * value, a NUL) are refused. NULL if it is not JSON. */
/* cJSON answers NULL both for text that is not JSON and for a memory
 * shortage; the allocation-free syntax check tells the two apart, so a
 * backup is never called corrupt because memory ran short. It is the one
 * core helper the executors use: a pure function over a buffer. */
static int parse_failed_for_memory(const char *text, size_t len)
{
    return text && jm__json_check(text, len) != JM_JSON_INVALID;
}

static cJSON *parse_exact(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!v)
        return NULL;
    while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end != text + len) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* Every object member must be one of `names`, each at most once; returns a
 * bit mask of those seen, or -1 with err set. */
static long members(const cJSON *obj, const char *const *names, int n, const char *what,
                    char *err, size_t errlen)
{
    long seen = 0;
    for (const cJSON *c = obj->child; c; c = c->next) {
        int i = 0;
        while (i < n && strcmp(c->string, names[i]) != 0)
            i++;
        if (i == n) {
            snprintf(err, errlen, "%s: unknown field \"%.64s\"", what, c->string);
            return -1;
        }
        if (seen & (1L << i)) {
            snprintf(err, errlen, "%s: field \"%s\" appears twice", what, names[i]);
            return -1;
        }
        seen |= 1L << i;
    }
    for (int i = 0; i < n; i++) {
        if (!(seen & (1L << i))) {
            snprintf(err, errlen, "%s: missing field \"%s\"", what, names[i]);
            return -1;
        }
    }
    return seen;
}

static const char *const manifest_fields[] = {
    "format", "format_version", "namespace", "table", "table_type",
    "row_count", "compression", "created_at", "files",
};
#define MANIFEST_NFIELDS ((int)(sizeof manifest_fields / sizeof manifest_fields[0]))

static const char *const file_fields[] = {"name", "bytes", "sha256"};
#define FILE_NFIELDS ((int)(sizeof file_fields / sizeof file_fields[0]))

static const char *str_of(const cJSON *obj, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int parse_files(const cJSON *files, jm__manifest *m, char *err, size_t errlen)
{
    const char *expected[JM_BACKUP_DATA_FILES] = {JM_BACKUP_META_FILE,
                                                  jm__backup_rows_file(m->compression)};
    if (!cJSON_IsArray(files)) {
        snprintf(err, errlen, "manifest: \"files\" must be an array");
        return JM_EINVAL;
    }
    int index = 0;
    for (const cJSON *f = files->child; f; f = f->next, index++) {
        char what[48];
        snprintf(what, sizeof what, "manifest: files[%d]", index);
        if (!cJSON_IsObject(f)) {
            snprintf(err, errlen, "%s must be an object", what);
            return JM_EINVAL;
        }
        if (members(f, file_fields, FILE_NFIELDS, what, err, errlen) < 0)
            return JM_EINVAL;
        const char *name = str_of(f, "name");
        const char *sha = str_of(f, "sha256");
        int64_t bytes = 0;
        if (!name || !jm__backup_file_name_valid(name)) {
            snprintf(err, errlen,
                     "%s: \"name\" must be 1..%d of [A-Za-z0-9._-], not starting with '.'",
                     what, JM_BACKUP_FILE_NAME_MAX);
            return JM_EINVAL;
        }
        if (json_int(cJSON_GetObjectItemCaseSensitive(f, "bytes"), 0, JM_BACKUP_FILE_MAX_BYTES,
                     &bytes)) {
            snprintf(err, errlen, "%s (%s): \"bytes\" must be an integer in 0..%lld", what, name,
                     (long long)JM_BACKUP_FILE_MAX_BYTES);
            return JM_EINVAL;
        }
        if (!sha || strlen(sha) != JM_SHA256_HEX_SIZE - 1 || !sha_hex_valid(sha)) {
            snprintf(err, errlen, "%s (%s): \"sha256\" must be 64 lower-case hex digits", what,
                     name);
            return JM_EINVAL;
        }
        int known = 0;
        for (int i = 0; i < JM_BACKUP_DATA_FILES; i++)
            known |= strcmp(name, expected[i]) == 0;
        if (!known) {
            snprintf(err, errlen, "%s: unexpected file \"%s\" (a %s backup holds %s and %s)",
                     what, name, jm__backup_compression_name(m->compression), expected[0],
                     expected[1]);
            return JM_EINVAL;
        }
        if (jm__manifest_find(m, name)) {
            snprintf(err, errlen, "%s: file \"%s\" is listed twice", what, name);
            return JM_EINVAL;
        }
        jm__manifest_file *out = &m->files[m->nfiles++];
        snprintf(out->name, sizeof out->name, "%s", name);
        out->bytes = bytes;
        memcpy(out->sha256, sha, JM_SHA256_HEX_SIZE);
    }
    for (int i = 0; i < JM_BACKUP_DATA_FILES; i++) {
        if (!jm__manifest_find(m, expected[i])) {
            snprintf(err, errlen, "manifest: file \"%s\" is missing from \"files\"",
                     expected[i]);
            return JM_EINVAL;
        }
    }
    return JM_OK;
}

static int parse_object(const cJSON *root, jm__manifest *m, char *err, size_t errlen)
{
    if (members(root, manifest_fields, MANIFEST_NFIELDS, "manifest", err, errlen) < 0)
        return JM_EINVAL;
    const char *format = str_of(root, "format");
    if (!format || strcmp(format, JM_BACKUP_FORMAT) != 0) {
        snprintf(err, errlen, "manifest: \"format\" must be \"%s\"", JM_BACKUP_FORMAT);
        return JM_EINVAL;
    }
    int64_t version = 0;
    if (json_int(cJSON_GetObjectItemCaseSensitive(root, "format_version"), 0, JM_BACKUP_MAX_INT,
                 &version) ||
        version != JM_BACKUP_FORMAT_VERSION) {
        snprintf(err, errlen, "manifest: \"format_version\" must be %d (this library's format)",
                 JM_BACKUP_FORMAT_VERSION);
        return JM_EINVAL;
    }
    m->format_version = (int)version;
    const char *ns = str_of(root, "namespace");
    const char *table = str_of(root, "table");
    if (!jm__name_valid(ns) || !jm__name_valid(table)) {
        snprintf(err, errlen, "manifest: \"%s\" must be a valid name",
                 jm__name_valid(ns) ? "table" : "namespace");
        return JM_EINVAL;
    }
    snprintf(m->ns, sizeof m->ns, "%s", ns);
    snprintf(m->table, sizeof m->table, "%s", table);
    const char *type = str_of(root, "table_type");
    if (!type || jm_table_type_parse(type, &m->table_type) != JM_OK) {
        snprintf(err, errlen, "manifest: \"table_type\" must be \"User\", \"Shared\" or \"Stream\"");
        return JM_EINVAL;
    }
    if (json_int(cJSON_GetObjectItemCaseSensitive(root, "row_count"), 0, JM_BACKUP_MAX_INT,
                 &m->row_count)) {
        snprintf(err, errlen, "manifest: \"row_count\" must be an integer in 0..%lld",
                 (long long)JM_BACKUP_MAX_INT);
        return JM_EINVAL;
    }
    if (jm__backup_compression_parse(str_of(root, "compression"), &m->compression)) {
        snprintf(err, errlen, "manifest: \"compression\" must be \"zstd\" or \"none\"");
        return JM_EINVAL;
    }
    if (json_int(cJSON_GetObjectItemCaseSensitive(root, "created_at"), 0, JM_BACKUP_MAX_INT,
                 &m->created_at)) {
        snprintf(err, errlen, "manifest: \"created_at\" must be an integer in 0..%lld",
                 (long long)JM_BACKUP_MAX_INT);
        return JM_EINVAL;
    }
    return parse_files(cJSON_GetObjectItemCaseSensitive(root, "files"), m, err, errlen);
}

int jm__manifest_parse(const char *json, size_t len, jm__manifest **out, char *err,
                       size_t errlen)
{
    int rc = JM_OK;
    cJSON *root = NULL;
    jm__manifest *m = NULL;
    *out = NULL;
    if (!json || len > JM_BACKUP_MANIFEST_MAX_BYTES) {
        snprintf(err, errlen, "manifest is larger than %d bytes", JM_BACKUP_MANIFEST_MAX_BYTES);
        rc = JM_ETOOBIG;
        goto done;
    }
    root = parse_exact(json, len);
    if (!root && parse_failed_for_memory(json, len)) {
        snprintf(err, errlen, "out of memory reading the manifest");
        rc = JM_ENOMEM;
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "manifest is not a JSON object");
        rc = JM_EJSON;
        goto done;
    }
    m = cJSON_malloc(sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory reading the manifest");
        rc = JM_ENOMEM;
        goto done;
    }
    memset(m, 0, sizeof *m);
    rc = parse_object(root, m, err, errlen);
    if (rc)
        goto done;
    *out = m;
    m = NULL;
done:
    cJSON_free(m);
    cJSON_Delete(root);
    return rc;
}

void jm__manifest_free(jm__manifest *m)
{
    cJSON_free(m);
}

const jm__manifest_file *jm__manifest_find(const jm__manifest *m, const char *name)
{
    for (size_t i = 0; i < m->nfiles; i++)
        if (strcmp(m->files[i].name, name) == 0)
            return &m->files[i];
    return NULL;
}

char *jm__manifest_print(const jm__manifest *m)
{
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *files = NULL;
    if (!root || !cJSON_AddStringToObject(root, "format", JM_BACKUP_FORMAT) ||
        !cJSON_AddNumberToObject(root, "format_version", JM_BACKUP_FORMAT_VERSION) ||
        !cJSON_AddStringToObject(root, "namespace", m->ns) ||
        !cJSON_AddStringToObject(root, "table", m->table) ||
        !cJSON_AddStringToObject(root, "table_type", jm_table_type_name(m->table_type)) ||
        !cJSON_AddNumberToObject(root, "row_count", (double)m->row_count) ||
        !cJSON_AddStringToObject(root, "compression",
                                 jm__backup_compression_name(m->compression)) ||
        !cJSON_AddNumberToObject(root, "created_at", (double)m->created_at) ||
        !(files = cJSON_AddArrayToObject(root, "files")))
        goto done;
    for (size_t i = 0; i < m->nfiles; i++) {
        cJSON *f = cJSON_CreateObject();
        if (!f)
            goto done;
        cJSON_AddItemToArray(files, f);
        if (!cJSON_AddStringToObject(f, "name", m->files[i].name) ||
            !cJSON_AddNumberToObject(f, "bytes", (double)m->files[i].bytes) ||
            !cJSON_AddStringToObject(f, "sha256", m->files[i].sha256))
            goto done;
    }
    text = cJSON_Print(root);
done:
    cJSON_Delete(root);
    return text;
}

int jm__backup_meta_check(const char *meta, size_t len, jm_table_type expect, char *err,
                          size_t errlen)
{
    if (len > JM_BACKUP_META_MAX_BYTES) {
        snprintf(err, errlen, "meta.json is larger than %d bytes", JM_BACKUP_META_MAX_BYTES);
        return JM_ETOOBIG;
    }
    cJSON *root = parse_exact(meta, len);
    int rc = JM_OK;
    if (!root && parse_failed_for_memory(meta, len)) {
        snprintf(err, errlen, "out of memory reading meta.json");
        rc = JM_ENOMEM;
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "meta.json is not a JSON object");
        rc = JM_EJSON;
        goto done;
    }
    const char *type = str_of(root, "type");
    if (!type || strcmp(type, jm_table_type_name(expect)) != 0) {
        snprintf(err, errlen, "meta.json: table type \"%.32s\" does not match \"%s\"",
                 type ? type : "(none)", jm_table_type_name(expect));
        rc = JM_EINVAL;
    }
done:
    cJSON_Delete(root);
    return rc;
}

/* ---- row lines ---------------------------------------------------------- */

#define ROW_PREFIX_MAX 96 /* {"key":…,"created_at":…,"deleted_at":…,"doc":" */

static size_t escaped_len(unsigned char c)
{
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
        return 2;
    return c < 0x20 ? 6 : 1;
}

static int row_ints_valid(const jm_host_row *r)
{
    return r->key >= -JM_BACKUP_MAX_INT && r->key <= JM_BACKUP_MAX_INT && r->created_at >= 0 &&
           r->created_at <= JM_BACKUP_MAX_INT && r->deleted_at >= 0 &&
           r->deleted_at <= JM_BACKUP_MAX_INT;
}

static int row_prefix(const jm_host_row *r, char *buf, size_t cap)
{
    return snprintf(buf, cap, "{\"key\":%lld,\"created_at\":%lld,\"deleted_at\":%lld,\"doc\":\"",
                    (long long)r->key, (long long)r->created_at, (long long)r->deleted_at);
}

size_t jm__backup_row_line_size(const jm_host_row *row)
{
    if (!row_ints_valid(row) || (row->doc_len && !row->doc))
        return 0;
    char prefix[ROW_PREFIX_MAX];
    size_t n = (size_t)row_prefix(row, prefix, sizeof prefix);
    for (size_t i = 0; i < row->doc_len; i++) {
        unsigned char c = (unsigned char)row->doc[i];
        if (c == 0)
            return 0;
        n += escaped_len(c);
    }
    return n + 3; /* "}\n */
}

void jm__backup_row_encode(const jm_host_row *row, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char prefix[ROW_PREFIX_MAX];
    int n = row_prefix(row, prefix, sizeof prefix);
    memcpy(out, prefix, (size_t)n);
    char *p = out + n;
    for (size_t i = 0; i < row->doc_len; i++) {
        unsigned char c = (unsigned char)row->doc[i];
        switch (c) {
        case '"': *p++ = '\\'; *p++ = '"'; break;
        case '\\': *p++ = '\\'; *p++ = '\\'; break;
        case '\b': *p++ = '\\'; *p++ = 'b'; break;
        case '\f': *p++ = '\\'; *p++ = 'f'; break;
        case '\n': *p++ = '\\'; *p++ = 'n'; break;
        case '\r': *p++ = '\\'; *p++ = 'r'; break;
        case '\t': *p++ = '\\'; *p++ = 't'; break;
        default:
            if (c < 0x20) {
                memcpy(p, "\\u00", 4);
                p[4] = hex[c >> 4];
                p[5] = hex[c & 15];
                p += 6;
            } else {
                *p++ = (char)c;
            }
        }
    }
    memcpy(p, "\"}\n", 3);
}

static const char *const row_fields[] = {"key", "created_at", "deleted_at", "doc"};
#define ROW_NFIELDS ((int)(sizeof row_fields / sizeof row_fields[0]))

int jm__backup_row_parse(const char *line, size_t len, jm_host_row *row, char *doc_buf,
                         char *err, size_t errlen)
{
    int rc = JM_EINVAL;
    cJSON *root = parse_exact(line, len);
    if (!root && parse_failed_for_memory(line, len)) {
        snprintf(err, errlen, "out of memory reading a row");
        rc = JM_ENOMEM;
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "not a JSON object");
        goto done;
    }
    if (members(root, row_fields, ROW_NFIELDS, "row", err, errlen) < 0)
        goto done;
    if (json_int(cJSON_GetObjectItemCaseSensitive(root, "key"), -JM_BACKUP_MAX_INT,
                 JM_BACKUP_MAX_INT, &row->key) ||
        json_int(cJSON_GetObjectItemCaseSensitive(root, "created_at"), 0, JM_BACKUP_MAX_INT,
                 &row->created_at) ||
        json_int(cJSON_GetObjectItemCaseSensitive(root, "deleted_at"), 0, JM_BACKUP_MAX_INT,
                 &row->deleted_at)) {
        snprintf(err, errlen, "row: \"key\", \"created_at\" and \"deleted_at\" must be integers");
        goto done;
    }
    const char *doc = str_of(root, "doc");
    if (!doc) {
        snprintf(err, errlen, "row: \"doc\" must be a string");
        goto done;
    }
    size_t n = strlen(doc);
    if (n > len) { /* cannot happen: decoding never lengthens a string */
        snprintf(err, errlen, "row: document longer than its line");
        goto done;
    }
    memcpy(doc_buf, doc, n);
    row->doc = doc_buf;
    row->doc_len = n;
    rc = JM_OK;
done:
    cJSON_Delete(root);
    return rc;
}
