/*
 * The backup format (src/executors/backup_format.c): the strict manifest
 * parser as a table of hostile and broken manifests, each refused with the
 * right code and a message naming the problem; the writer's output read
 * back; row lines encoded and parsed back byte for byte; and the metadata
 * check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backup_format.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define META_OK "{\"name\":\"meta.json\",\"bytes\":10,\"sha256\":\"" SHA_A "\"}"
#define ZST_OK "{\"name\":\"rows.jsonl.zst\",\"bytes\":20,\"sha256\":\"" SHA_B "\"}"
#define FILES_OK "[" META_OK "," ZST_OK "]"

/* A manifest's fields as raw JSON text; NULL leaves a field out. */
typedef struct mf {
    const char *format, *version, *ns, *table, *type, *rows, *comp, *created, *files;
    const char *extra; /* appended inside the object, e.g. ",\"x\":1" */
} mf;

static const mf good = {"\"jobmgr-backup\"", "1", "\"ns\"", "\"t\"", "\"User\"", "3",
                        "\"zstd\"", "1700000000000", FILES_OK, ""};

static char *build(const mf *m)
{
    const char *names[] = {"format", "format_version", "namespace", "table", "table_type",
                           "row_count", "compression", "created_at", "files"};
    const char *vals[] = {m->format, m->version, m->ns, m->table, m->type,
                          m->rows, m->comp, m->created, m->files};
    size_t cap = 4096 + strlen(m->extra);
    char *s = malloc(cap);
    size_t n = (size_t)snprintf(s, cap, "{");
    int first = 1;
    for (int i = 0; i < 9; i++) {
        if (!vals[i])
            continue;
        n += (size_t)snprintf(s + n, cap - n, "%s\"%s\":%s", first ? "" : ",", names[i], vals[i]);
        first = 0;
    }
    snprintf(s + n, cap - n, "%s}", m->extra);
    return s;
}

static int parse_text(const char *text, size_t len, char *err, size_t errlen)
{
    jm__manifest *m = NULL;
    int rc = jm__manifest_parse(text, len, &m, err, errlen);
    if (rc == JM_OK)
        assert_non_null(m);
    else
        assert_null(m);
    jm__manifest_free(m);
    return rc;
}

static void good_manifest_parses(void **state)
{
    (void)state;
    char *text = build(&good);
    jm__manifest *m = NULL;
    char err[256] = "";
    assert_int_equal(jm__manifest_parse(text, strlen(text), &m, err, sizeof err), JM_OK);
    assert_string_equal(m->ns, "ns");
    assert_string_equal(m->table, "t");
    assert_int_equal(m->table_type, JM_TABLE_USER);
    assert_int_equal(m->row_count, 3);
    assert_int_equal(m->compression, JM_BACKUP_ZSTD);
    assert_int_equal(m->created_at, INT64_C(1700000000000));
    assert_int_equal(m->nfiles, 2);
    const jm__manifest_file *f = jm__manifest_find(m, "rows.jsonl.zst");
    assert_non_null(f);
    assert_int_equal(f->bytes, 20);
    assert_string_equal(f->sha256, SHA_B);
    assert_null(jm__manifest_find(m, "rows.jsonl"));
    jm__manifest_free(m);
    free(text);

    /* Uncompressed, files in the other order, white space around. */
    mf none = good;
    none.comp = "\"none\"";
    none.files = "[{\"name\":\"rows.jsonl\",\"bytes\":0,\"sha256\":\"" SHA_B "\"}," META_OK "]";
    text = build(&none);
    char padded[4096];
    snprintf(padded, sizeof padded, " \n%s\n ", text);
    assert_int_equal(parse_text(padded, strlen(padded), err, sizeof err), JM_OK);
    free(text);
}

typedef struct bad_case {
    const char *label;
    mf m;
    int rc;
    const char *mentions; /* a word the message must contain */
} bad_case;

#define M(field, value) ({ mf m_ = good; m_.field = value; m_; })

static void bad_manifests_refused(void **state)
{
    (void)state;
    const char *dup_meta = "[" META_OK "," META_OK "," ZST_OK "]";
    const bad_case cases[] = {
        {"format", M(format, "\"tarball\""), JM_EINVAL, "format"},
        {"format type", M(format, "1"), JM_EINVAL, "format"},
        {"no format", M(format, NULL), JM_EINVAL, "format"},
        {"version 2", M(version, "2"), JM_EINVAL, "format_version"},
        {"version string", M(version, "\"1\""), JM_EINVAL, "format_version"},
        {"version fraction", M(version, "1.5"), JM_EINVAL, "format_version"},
        {"namespace ..", M(ns, "\"..\""), JM_EINVAL, "namespace"},
        {"namespace slash", M(ns, "\"a/b\""), JM_EINVAL, "namespace"},
        {"namespace number", M(ns, "5"), JM_EINVAL, "namespace"},
        {"table empty", M(table, "\"\""), JM_EINVAL, "table"},
        {"table null", M(table, "null"), JM_EINVAL, "table"},
        {"type", M(type, "\"Temp\""), JM_EINVAL, "table_type"},
        {"type lower", M(type, "\"user\""), JM_EINVAL, "table_type"},
        {"rows negative", M(rows, "-1"), JM_EINVAL, "row_count"},
        {"rows string", M(rows, "\"3\""), JM_EINVAL, "row_count"},
        {"rows huge", M(rows, "1e300"), JM_EINVAL, "row_count"},
        {"rows fraction", M(rows, "2.5"), JM_EINVAL, "row_count"},
        {"rows bool", M(rows, "true"), JM_EINVAL, "row_count"},
        {"compression", M(comp, "\"gzip\""), JM_EINVAL, "compression"},
        {"no compression", M(comp, NULL), JM_EINVAL, "compression"},
        {"created negative", M(created, "-5"), JM_EINVAL, "created_at"},
        {"files object", M(files, "{}"), JM_EINVAL, "files"},
        {"files empty", M(files, "[]"), JM_EINVAL, "meta.json"},
        {"dotdot name", M(files, "[" META_OK ",{\"name\":\"../rows.jsonl.zst\",\"bytes\":1,"
                                 "\"sha256\":\"" SHA_B "\"}]"),
         JM_EINVAL, "name"},
        {"absolute name", M(files, "[" META_OK ",{\"name\":\"/etc/passwd\",\"bytes\":1,"
                                   "\"sha256\":\"" SHA_B "\"}]"),
         JM_EINVAL, "name"},
        {"hidden name", M(files, "[" META_OK ",{\"name\":\".rows.jsonl.zst\",\"bytes\":1,"
                                 "\"sha256\":\"" SHA_B "\"}]"),
         JM_EINVAL, "name"},
        {"long name", M(files, "[" META_OK ",{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaa\",\"bytes\":1,\"sha256\":\"" SHA_B "\"}]"),
         JM_EINVAL, "name"},
        {"duplicate file", M(files, dup_meta), JM_EINVAL, "twice"},
        {"extra file", M(files, "[" META_OK "," ZST_OK ",{\"name\":\"evil.sh\",\"bytes\":1,"
                                "\"sha256\":\"" SHA_B "\"}]"),
         JM_EINVAL, "evil.sh"},
        {"missing rows", M(files, "[" META_OK "]"), JM_EINVAL, "rows.jsonl.zst"},
        {"rows of other compression",
         M(files, "[" META_OK ",{\"name\":\"rows.jsonl\",\"bytes\":1,\"sha256\":\"" SHA_B "\"}]"),
         JM_EINVAL, "rows.jsonl"},
        {"huge size", M(files, "[" META_OK ",{\"name\":\"rows.jsonl.zst\",\"bytes\":1e18,"
                               "\"sha256\":\"" SHA_B "\"}]"),
         JM_EINVAL, "bytes"},
        {"negative size", M(files, "[" META_OK ",{\"name\":\"rows.jsonl.zst\",\"bytes\":-1,"
                                   "\"sha256\":\"" SHA_B "\"}]"),
         JM_EINVAL, "bytes"},
        {"size string", M(files, "[" META_OK ",{\"name\":\"rows.jsonl.zst\",\"bytes\":\"20\","
                                 "\"sha256\":\"" SHA_B "\"}]"),
         JM_EINVAL, "bytes"},
        {"short sha", M(files, "[" META_OK ",{\"name\":\"rows.jsonl.zst\",\"bytes\":2,"
                               "\"sha256\":\"abc\"}]"),
         JM_EINVAL, "sha256"},
        {"upper sha", M(files, "[" META_OK ",{\"name\":\"rows.jsonl.zst\",\"bytes\":2,"
                               "\"sha256\":\"" "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
                               "\"}]"),
         JM_EINVAL, "sha256"},
        {"entry not object", M(files, "[" META_OK ",\"rows.jsonl.zst\"]"), JM_EINVAL, "object"},
        {"entry extra field",
         M(files, "[" META_OK ",{\"name\":\"rows.jsonl.zst\",\"bytes\":2,\"sha256\":\"" SHA_B
                  "\",\"path\":\"/x\"}]"),
         JM_EINVAL, "path"},
        {"entry missing sha", M(files, "[" META_OK ",{\"name\":\"rows.jsonl.zst\",\"bytes\":2}]"),
         JM_EINVAL, "sha256"},
        {"unknown field", M(extra, ",\"owner\":\"x\""), JM_EINVAL, "owner"},
        {"duplicate field", M(extra, ",\"row_count\":4"), JM_EINVAL, "twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = build(&cases[i].m);
        char err[256] = "";
        int rc = parse_text(text, strlen(text), err, sizeof err);
        if (rc != cases[i].rc || !strstr(err, cases[i].mentions))
            fail_msg("case \"%s\": rc %d, message \"%s\" (wanted %d, \"%s\")\n%s",
                     cases[i].label, rc, err, cases[i].rc, cases[i].mentions, text);
        free(text);
    }
}

static void not_json_or_too_big(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(parse_text("garbage", 7, err, sizeof err), JM_EJSON);
    assert_int_equal(parse_text("", 0, err, sizeof err), JM_EJSON);
    assert_int_equal(parse_text("[1,2]", 5, err, sizeof err), JM_EJSON);
    assert_int_equal(parse_text("null", 4, err, sizeof err), JM_EJSON);

    char *text = build(&good);
    size_t n = strlen(text);
    /* Trailing bytes: a second value, a NUL, junk. */
    char *more = malloc(n + 8);
    memcpy(more, text, n);
    memcpy(more + n, "{}", 2);
    assert_int_equal(parse_text(more, n + 2, err, sizeof err), JM_EJSON);
    more[n] = '\0';
    assert_int_equal(parse_text(more, n + 1, err, sizeof err), JM_EJSON);
    /* Cut short. */
    assert_int_equal(parse_text(text, n - 1, err, sizeof err), JM_EJSON);
    assert_int_equal(parse_text(text, n / 2, err, sizeof err), JM_EJSON);
    free(more);

    /* Over the limit, even though it would parse. */
    size_t big = JM_BACKUP_MANIFEST_MAX_BYTES + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    memcpy(huge, text, n);
    assert_int_equal(parse_text(huge, big, err, sizeof err), JM_ETOOBIG);
    assert_non_null(strstr(err, "larger"));
    /* At the limit it is fine. */
    assert_int_equal(parse_text(huge, big - 1, err, sizeof err), JM_OK);
    free(huge);
    free(text);
}

static void printed_manifest_parses_back(void **state)
{
    (void)state;
    jm__manifest m;
    memset(&m, 0, sizeof m);
    m.format_version = JM_BACKUP_FORMAT_VERSION;
    strcpy(m.ns, "app-1");
    strcpy(m.table, "events.v2");
    m.table_type = JM_TABLE_STREAM;
    m.row_count = INT64_C(123456789012);
    m.compression = JM_BACKUP_NONE;
    m.created_at = INT64_C(1700000000123);
    m.nfiles = 2;
    strcpy(m.files[0].name, "meta.json");
    m.files[0].bytes = 77;
    strcpy(m.files[0].sha256, SHA_A);
    strcpy(m.files[1].name, "rows.jsonl");
    m.files[1].bytes = JM_BACKUP_FILE_MAX_BYTES;
    strcpy(m.files[1].sha256, SHA_B);
    char *text = jm__manifest_print(&m);
    assert_non_null(text);
    jm__manifest *back = NULL;
    char err[256] = "";
    assert_int_equal(jm__manifest_parse(text, strlen(text), &back, err, sizeof err), JM_OK);
    assert_memory_equal(back, &m, sizeof m);
    jm__manifest_free(back);
    cJSON_free(text);
}

static void row_round_trip(const char *doc, size_t len, int64_t key, int64_t created,
                           int64_t deleted)
{
    jm_host_row r = {key, created, deleted, doc, len};
    size_t n = jm__backup_row_line_size(&r);
    assert_true(n > 0);
    char *line = malloc(n);
    jm__backup_row_encode(&r, line);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1)); /* one line per row */
    char *docbuf = malloc(n);
    jm_host_row back;
    char err[256] = "";
    assert_int_equal(jm__backup_row_parse(line, n - 1, &back, docbuf, err, sizeof err), JM_OK);
    assert_int_equal(back.key, key);
    assert_int_equal(back.created_at, created);
    assert_int_equal(back.deleted_at, deleted);
    assert_int_equal(back.doc_len, len);
    assert_memory_equal(back.doc, doc, len);
    free(docbuf);
    free(line);
}

static void rows_round_trip_byte_for_byte(void **state)
{
    (void)state;
    row_round_trip("{\"a\":1}", 7, 1, 1700000000000, 0);
    row_round_trip("", 0, -5, 0, 0);
    const char tricky[] = "{ \"q\\\"\" :\t\"back\\\\slash\",\r\n \"u\":\"h\xc3\xa9llo \xe2\x82\xac\","
                          "\"ctl\":\"\\u0001\", \"x\":\"\x7f\x01\x1f\b\f\"}";
    row_round_trip(tricky, sizeof tricky - 1, 42, 1, 2);
    row_round_trip("\"", 1, JM_BACKUP_MAX_INT, JM_BACKUP_MAX_INT, JM_BACKUP_MAX_INT);
    /* Invalid UTF-8 travels as it is. */
    row_round_trip("\"\xff\xfe\"", 4, 7, 8, 9);
}

static void rows_that_cannot_be_written(void **state)
{
    (void)state;
    jm_host_row nul = {1, 1, 0, "{\"a\":\"\0\"}", 9};
    assert_int_equal(jm__backup_row_line_size(&nul), 0);
    jm_host_row big = {JM_BACKUP_MAX_INT + 1, 1, 0, "{}", 2};
    assert_int_equal(jm__backup_row_line_size(&big), 0);
    jm_host_row neg = {1, -1, 0, "{}", 2};
    assert_int_equal(jm__backup_row_line_size(&neg), 0);
    jm_host_row del = {1, 1, -3, "{}", 2};
    assert_int_equal(jm__backup_row_line_size(&del), 0);
}

static void bad_row_lines_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "[]",
        "{\"key\":1,\"created_at\":2,\"deleted_at\":0}",
        "{\"key\":1,\"created_at\":2,\"deleted_at\":0,\"doc\":\"{}\",\"x\":1}",
        "{\"key\":1,\"created_at\":2,\"deleted_at\":0,\"doc\":{}}",
        "{\"key\":\"1\",\"created_at\":2,\"deleted_at\":0,\"doc\":\"{}\"}",
        "{\"key\":1.5,\"created_at\":2,\"deleted_at\":0,\"doc\":\"{}\"}",
        "{\"key\":1,\"created_at\":-2,\"deleted_at\":0,\"doc\":\"{}\"}",
        "{\"key\":1,\"created_at\":2,\"deleted_at\":1e300,\"doc\":\"{}\"}",
        "{\"key\":1,\"key\":2,\"deleted_at\":0,\"doc\":\"{}\"}",
        "{\"key\":1,\"created_at\":2,\"deleted_at\":0,\"doc\":\"{}\"} x",
        "{\"key\":1,\"created_at\":2,\"deleted_at\":0,\"doc\":\"{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char docbuf[256];
        jm_host_row r;
        char err[256] = "";
        int rc = jm__backup_row_parse(bad[i], strlen(bad[i]), &r, docbuf, err, sizeof err);
        if (rc != JM_EINVAL || !err[0])
            fail_msg("line accepted: %s", bad[i]);
    }
}

static void meta_check(void **state)
{
    (void)state;
    char err[256];
    const char *ok = "{\"type\":\"Shared\",\"ttl_seconds\":0}";
    assert_int_equal(jm__backup_meta_check(ok, strlen(ok), JM_TABLE_SHARED, err, sizeof err),
                     JM_OK);
    assert_int_equal(jm__backup_meta_check(ok, strlen(ok), JM_TABLE_USER, err, sizeof err),
                     JM_EINVAL);
    assert_non_null(strstr(err, "Shared"));
    const char *untyped = "{\"ttl_seconds\":0}";
    assert_int_equal(
        jm__backup_meta_check(untyped, strlen(untyped), JM_TABLE_USER, err, sizeof err),
        JM_EINVAL);
    assert_int_equal(jm__backup_meta_check("[1]", 3, JM_TABLE_USER, err, sizeof err), JM_EJSON);
    assert_int_equal(jm__backup_meta_check("{", 1, JM_TABLE_USER, err, sizeof err), JM_EJSON);
    assert_int_equal(jm__backup_meta_check(ok, JM_BACKUP_META_MAX_BYTES + 1, JM_TABLE_SHARED,
                                           err, sizeof err),
                     JM_ETOOBIG);
}

static void file_names(void **state)
{
    (void)state;
    assert_true(jm__backup_file_name_valid("rows.jsonl.zst"));
    assert_true(jm__backup_file_name_valid("A-b_9"));
    assert_false(jm__backup_file_name_valid(""));
    assert_false(jm__backup_file_name_valid(".."));
    assert_false(jm__backup_file_name_valid(".x"));
    assert_false(jm__backup_file_name_valid("a/b"));
    assert_false(jm__backup_file_name_valid("a b"));
    char long_name[80];
    memset(long_name, 'a', sizeof long_name);
    long_name[64] = '\0';
    assert_true(jm__backup_file_name_valid(long_name));
    long_name[64] = 'a';
    long_name[65] = '\0';
    assert_false(jm__backup_file_name_valid(long_name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_manifest_parses),
        cmocka_unit_test(bad_manifests_refused),
        cmocka_unit_test(not_json_or_too_big),
        cmocka_unit_test(printed_manifest_parses_back),
        cmocka_unit_test(rows_round_trip_byte_for_byte),
        cmocka_unit_test(rows_that_cannot_be_written),
        cmocka_unit_test(bad_row_lines_refused),
        cmocka_unit_test(meta_check),
        cmocka_unit_test(file_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
