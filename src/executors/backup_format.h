/*
 * The on-disk format of a table backup, shared by the backup and restore
 * executors: the manifest (writer and strict parser), the row lines of the
 * rows file, and the check of the table metadata. Everything here works on
 * buffers, so a fuzzer can reach the parsers without files or a host.
 *
 * A backup is one directory holding exactly three files:
 *   meta.json                 the host's table metadata (a JSON object whose
 *                             "type" is the table type)
 *   rows.jsonl | rows.jsonl.zst
 *                             one line per row, in strictly increasing key
 *                             order: {"key":K,"created_at":C,"deleted_at":D,
 *                             "doc":"<the document as a JSON string>"};
 *                             compressed, one zstd frame per batch of
 *                             lines (the backup executor's), one after
 *                             the other
 *   manifest.json             written last: format, version, table, row
 *                             count, compression, and the size and SHA-256 of
 *                             the two other files
 * It does not do any I/O and does not decide policy (what a failed check
 * means for the job): the executors do.
 */
#ifndef JM_BACKUP_FORMAT_H
#define JM_BACKUP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "jobmgr.h"
#include "jobmgr/host.h"
#include "sha256.h"

#define JM_BACKUP_FORMAT "jobmgr-backup"
#define JM_BACKUP_FORMAT_VERSION 1

#define JM_BACKUP_MANIFEST_FILE "manifest.json"
#define JM_BACKUP_META_FILE "meta.json"
#define JM_BACKUP_ROWS_FILE "rows.jsonl"
#define JM_BACKUP_ROWS_ZSTD_FILE "rows.jsonl.zst"

/* The manifest and the metadata are small JSON objects; anything larger is
 * not ours and is refused before it is parsed. */
#define JM_BACKUP_MANIFEST_MAX_BYTES (1024 * 1024)
#define JM_BACKUP_META_MAX_BYTES (1024 * 1024)
/* The largest data file a manifest may declare (1 TiB): a bound, so a
 * hostile size can never drive an allocation or an overflow. */
#define JM_BACKUP_FILE_MAX_BYTES (INT64_C(1) << 40)
/* The longest row line, newline included. The reference engine's documents
 * are at most 1 MiB and escaping at most doubles them; a backup refuses a
 * row that would not fit, so every backup it writes can be restored. */
#define JM_BACKUP_LINE_MAX_BYTES (4 * 1024 * 1024)
/* Integers in the manifest and in row lines travel through JSON numbers,
 * which cJSON holds as doubles: exact up to 2^53, so that is the bound. */
#define JM_BACKUP_MAX_INT (INT64_C(1) << 53)
/* File names in a manifest: [A-Za-z0-9._-]{1,64}, not starting with '.'. */
#define JM_BACKUP_FILE_NAME_MAX 64
/* meta.json and the rows file. */
#define JM_BACKUP_DATA_FILES 2

typedef enum { JM_BACKUP_NONE, JM_BACKUP_ZSTD } jm__backup_compression;

/* "none" / "zstd"; and back (-1 for anything else). */
const char *jm__backup_compression_name(jm__backup_compression c);
int jm__backup_compression_parse(const char *s, jm__backup_compression *out);
/* rows.jsonl or rows.jsonl.zst. */
const char *jm__backup_rows_file(jm__backup_compression c);

typedef struct jm__manifest_file {
    char name[JM_BACKUP_FILE_NAME_MAX + 1];
    int64_t bytes;
    char sha256[JM_SHA256_HEX_SIZE];
} jm__manifest_file;

typedef struct jm__manifest {
    int format_version;
    char ns[JM_HOST_NAME_MAX + 1];
    char table[JM_HOST_NAME_MAX + 1];
    jm_table_type table_type;
    int64_t row_count;
    jm__backup_compression compression;
    int64_t created_at;
    /* Exactly JM_BACKUP_DATA_FILES after a successful parse: meta.json and
     * the rows file of the compression, in the order the manifest gave. */
    size_t nfiles;
    jm__manifest_file files[JM_BACKUP_DATA_FILES];
} jm__manifest;

/* Non-zero if name is an acceptable backup file name. */
int jm__backup_file_name_valid(const char *name);

/* Parses json[0..len) (no NUL needed) strictly: the known format and
 * version, every field present once with the right type and nothing else,
 * valid names, a known compression, row_count >= 0, and files naming
 * exactly meta.json and the rows file of the compression, each once, with a
 * size in 0..JM_BACKUP_FILE_MAX_BYTES and a 64-digit lower-case hex
 * SHA-256. On success *out is the caller's (jm__manifest_free). On failure
 * err gets a message naming what is wrong and the return is JM_ETOOBIG
 * (over JM_BACKUP_MANIFEST_MAX_BYTES), JM_EJSON (not a JSON object),
 * JM_EINVAL (anything else) or JM_ENOMEM. */
int jm__manifest_parse(const char *json, size_t len, jm__manifest **out, char *err,
                       size_t errlen);
void jm__manifest_free(jm__manifest *m);

/* The manifest as formatted JSON text (free with cJSON_free), or NULL if
 * out of memory. */
char *jm__manifest_print(const jm__manifest *m);

/* The entry named `name`, or NULL. */
const jm__manifest_file *jm__manifest_find(const jm__manifest *m, const char *name);

/* Checks table metadata: at most JM_BACKUP_META_MAX_BYTES, one JSON object
 * whose "type" is the name of `expect` ("User"...). JM_OK, or JM_EINVAL /
 * JM_ETOOBIG / JM_EJSON / JM_ENOMEM with a message in err. */
int jm__backup_meta_check(const char *meta, size_t len, jm_table_type expect, char *err,
                          size_t errlen);

/* The exact length of the row's line, newline included; 0 if the row cannot
 * be written (an integer outside +-JM_BACKUP_MAX_INT, a negative time, or a
 * NUL byte in the document, which a JSON string read back by cJSON cannot
 * carry). */
size_t jm__backup_row_line_size(const jm_host_row *row);
/* Writes the line (jm__backup_row_line_size() bytes, not NUL-terminated). */
void jm__backup_row_encode(const jm_host_row *row, char *out);

/* Parses one line (without its newline): a JSON object with exactly the
 * four fields of the right types. The document is copied to doc_buf, which
 * must hold at least len bytes (a decoded string is never longer than its
 * line); row->doc points there. JM_OK, or JM_EINVAL (JM_ENOMEM if memory
 * ran short) with err set. */
int jm__backup_row_parse(const char *line, size_t len, jm_host_row *row, char *doc_buf,
                         char *err, size_t errlen);

#endif
