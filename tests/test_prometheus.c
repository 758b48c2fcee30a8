/*
 * jm_metrics_prometheus(): its text passes a strict parser of the
 * Prometheus text exposition format 0.0.4 written here (every line a HELP,
 * a TYPE or a sample; valid names and label names; escaped label values;
 * float values; one TYPE per family, before its samples; families not
 * interleaved; no duplicate series; histogram buckets cumulative with
 * le="+Inf" last and equal to _count), and `promtool check metrics` when
 * promtool is installed. The numbers match jm_stats(); the buffer protocol
 * (size query, short buffer, exact fit) and bad input are checked too. The
 * parser is tested on broken texts, so a lax parser cannot pass silently.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "jobmgr.h"
#include "test_util.h"

#define T0 1700000000000LL
#define MAX_SAMPLES 4096
#define MAX_FAMILIES 64
#define NAME_MAX_LEN 128
#define LABELS_MAX_LEN 512

/* ------------------------------------------------------------------------
 * The strict parser
 * ------------------------------------------------------------------------ */

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind;

typedef struct family {
    char name[NAME_MAX_LEN];
    kind k;
    int has_help, has_type, has_samples, closed;
} family;

typedef struct sample {
    char name[NAME_MAX_LEN];
    char labels[LABELS_MAX_LEN]; /* canonical "k=v," pairs without le */
    int has_le;
    double le;
    double value;
    int family;
} sample;

typedef struct parsed {
    family fam[MAX_FAMILIES];
    int nfam;
    sample s[MAX_SAMPLES];
    int ns;
    char error[256];
} parsed;

static int perr(parsed *p, int line, const char *fmt, const char *arg)
{
    char a[100]; /* the quoted text, cut short: enough to find the line */
    size_t n = strnlen(arg, sizeof a - 1);
    memcpy(a, arg, n);
    a[n] = '\0';
    char msg[200];
    snprintf(msg, sizeof msg, fmt, a);
    snprintf(p->error, sizeof p->error, "line %d: %s", line, msg);
    return -1;
}

static int name_start(char c, int colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static int name_char(char c, int colon)
{
    return name_start(c, colon) || (c >= '0' && c <= '9');
}

/* Reads a metric name (colon) or label name; returns its length, 0 if none. */
static size_t read_name(const char *s, int colon, char *out)
{
    size_t n = 0;
    if (!name_start(s[0], colon))
        return 0;
    while (name_char(s[n], colon))
        n++;
    if (n >= NAME_MAX_LEN)
        return 0;
    memcpy(out, s, n);
    out[n] = '\0';
    return n;
}

static int parse_float(const char *s, double *out)
{
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Inf") == 0) {
        *out = -INFINITY;
        return 0;
    }
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return 0;
    }
    /* strtod also takes "inf", "nan" and hex: the format does not. */
    for (const char *c = s; *c; c++)
        if (!strchr("0123456789+-.eE", *c))
            return -1;
    char *end = NULL;
    *out = strtod(s, &end);
    return *s && end && *end == '\0' ? 0 : -1;
}

static int find_family(const parsed *p, const char *name)
{
    for (int i = 0; i < p->nfam; i++)
        if (strcmp(p->fam[i].name, name) == 0)
            return i;
    return -1;
}

/* The family a sample name belongs to: itself, or a histogram's
 * _bucket/_sum/_count. */
static int family_of_sample(const parsed *p, const char *name, int *suffix)
{
    *suffix = 0;
    int f = find_family(p, name);
    if (f >= 0 && p->fam[f].k != KIND_HISTOGRAM)
        return f;
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(name), k = strlen(sfx[i]);
        if (n > k && strcmp(name + n - k, sfx[i]) == 0) {
            char base[NAME_MAX_LEN];
            memcpy(base, name, n - k);
            base[n - k] = '\0';
            f = find_family(p, base);
            if (f >= 0 && p->fam[f].k == KIND_HISTOGRAM) {
                *suffix = i + 1;
                return f;
            }
        }
    }
    return -1;
}

static int parse_comment(parsed *p, int line, const char *l)
{
    int help = strncmp(l, "# HELP ", 7) == 0;
    if (!help && strncmp(l, "# TYPE ", 7) != 0)
        return perr(p, line, "comment is neither HELP nor TYPE: %s", l);
    char name[NAME_MAX_LEN];
    size_t n = read_name(l + 7, 1, name);
    if (!n)
        return perr(p, line, "bad metric name in: %s", l);
    const char *rest = l + 7 + n;
    if (*rest != ' ' || rest[1] == '\0')
        return perr(p, line, "missing text after the name: %s", l);
    rest++;
    int f = find_family(p, name);
    if (f < 0) {
        if (p->nfam == MAX_FAMILIES)
            return perr(p, line, "too many families%s", "");
        f = p->nfam++;
        memset(&p->fam[f], 0, sizeof p->fam[f]);
        snprintf(p->fam[f].name, sizeof p->fam[f].name, "%s", name);
    }
    family *fam = &p->fam[f];
    if (fam->has_samples)
        return perr(p, line, "HELP/TYPE after the family's samples: %s", name);
    for (int i = 0; i < p->nfam; i++)
        if (i != f && p->fam[i].has_samples && !p->fam[i].closed)
            p->fam[i].closed = 1;
    if (help) {
        if (fam->has_help)
            return perr(p, line, "second HELP for %s", name);
        for (const char *c = rest; *c; c++)
            if (*c == '\\' && c[1] != '\\' && c[1] != 'n')
                return perr(p, line, "bad escape in HELP of %s", name);
        fam->has_help = 1;
        return 0;
    }
    if (fam->has_type)
        return perr(p, line, "second TYPE for %s", name);
    if (strcmp(rest, "counter") == 0)
        fam->k = KIND_COUNTER;
    else if (strcmp(rest, "gauge") == 0)
        fam->k = KIND_GAUGE;
    else if (strcmp(rest, "histogram") == 0)
        fam->k = KIND_HISTOGRAM;
    else
        return perr(p, line, "unknown TYPE: %s", rest);
    fam->has_type = 1;
    return 0;
}

/* Parses {k="v",...} into canonical text; le goes apart. Returns the
 * characters consumed, -1 on error. */
static int parse_labels(parsed *p, int line, const char *l, sample *s)
{
    const char *c = l + 1;
    size_t used = 0;
    char seen[16][NAME_MAX_LEN];
    int nseen = 0;
    s->labels[0] = '\0';
    while (*c != '}') {
        char lname[NAME_MAX_LEN];
        size_t n = read_name(c, 0, lname);
        if (!n)
            return perr(p, line, "bad label name at: %s", c);
        if (strncmp(lname, "__", 2) == 0)
            return perr(p, line, "reserved label name %s", lname);
        for (int i = 0; i < nseen; i++)
            if (strcmp(seen[i], lname) == 0)
                return perr(p, line, "label %s twice", lname);
        if (nseen == 16)
            return perr(p, line, "too many labels%s", "");
        snprintf(seen[nseen++], NAME_MAX_LEN, "%s", lname);
        c += n;
        if (c[0] != '=' || c[1] != '"')
            return perr(p, line, "expected =\" after label %s", lname);
        c += 2;
        char value[LABELS_MAX_LEN];
        size_t vn = 0;
        while (*c != '"') {
            if (!*c)
                return perr(p, line, "unterminated label value%s", "");
            char ch = *c++;
            if (ch == '\\') {
                if (*c == '\\' || *c == '"')
                    ch = *c++;
                else if (*c == 'n') {
                    ch = '\n';
                    c++;
                } else
                    return perr(p, line, "bad escape in label %s", lname);
            }
            if (vn + 1 >= sizeof value)
                return perr(p, line, "label value too long%s", "");
            value[vn++] = ch;
        }
        value[vn] = '\0';
        c++;
        if (strcmp(lname, "le") == 0) {
            if (parse_float(value, &s->le))
                return perr(p, line, "le is not a float: %s", value);
            s->has_le = 1;
        } else {
            int w = snprintf(s->labels + used, sizeof s->labels - used, "%s=%s,", lname, value);
            if (w < 0 || (size_t)w >= sizeof s->labels - used)
                return perr(p, line, "labels too long%s", "");
            used += (size_t)w;
        }
        if (*c == ',')
            c++;
        else if (*c != '}')
            return perr(p, line, "expected , or } at: %s", c);
    }
    return (int)(c + 1 - l);
}

static int parse_sample(parsed *p, int line, const char *l)
{
    if (p->ns == MAX_SAMPLES)
        return perr(p, line, "too many samples%s", "");
    sample *s = &p->s[p->ns];
    memset(s, 0, sizeof *s);
    size_t n = read_name(l, 1, s->name);
    if (!n)
        return perr(p, line, "bad sample name: %s", l);
    const char *c = l + n;
    if (*c == '{') {
        int k = parse_labels(p, line, c, s);
        if (k < 0)
            return -1;
        c += k;
    }
    if (*c != ' ')
        return perr(p, line, "expected one space before the value: %s", l);
    c++;
    if (strchr(c, ' '))
        return perr(p, line, "extra field (timestamps are not expected): %s", l);
    if (parse_float(c, &s->value))
        return perr(p, line, "value is not a float: %s", c);
    int suffix;
    int f = family_of_sample(p, s->name, &suffix);
    if (f < 0 || !p->fam[f].has_type)
        return perr(p, line, "sample before its family's TYPE: %s", s->name);
    family *fam = &p->fam[f];
    if (fam->closed)
        return perr(p, line, "family %s interleaved with another", fam->name);
    if (fam->k == KIND_HISTOGRAM && suffix == 1 && !s->has_le)
        return perr(p, line, "bucket without le: %s", l);
    if (s->has_le && suffix != 1)
        return perr(p, line, "le outside a histogram bucket: %s", l);
    if (fam->k == KIND_COUNTER && s->value < 0)
        return perr(p, line, "negative counter: %s", l);
    for (int i = 0; i < p->ns; i++)
        if (strcmp(p->s[i].name, s->name) == 0 && strcmp(p->s[i].labels, s->labels) == 0 &&
            p->s[i].has_le == s->has_le && (!s->has_le || p->s[i].le == s->le))
            return perr(p, line, "duplicate series: %s", l);
    for (int i = 0; i < p->nfam; i++)
        if (i != f && p->fam[i].has_samples)
            p->fam[i].closed = 1;
    fam->has_samples = 1;
    s->family = f;
    p->ns++;
    return 0;
}

/* Histograms: per label set, buckets in increasing le, non-decreasing
 * counts, +Inf last and equal to _count, and a _sum. */
static int check_histograms(parsed *p)
{
    for (int i = 0; i < p->ns; i++) {
        const sample *first = &p->s[i];
        if (p->fam[first->family].k != KIND_HISTOGRAM || !first->has_le)
            continue;
        int fresh = 1; /* only the first bucket of each label set starts a check */
        for (int j = 0; j < i; j++)
            if (p->s[j].has_le && p->s[j].family == first->family &&
                strcmp(p->s[j].labels, first->labels) == 0)
                fresh = 0;
        if (!fresh)
            continue;
        double last_le = -INFINITY, last_v = 0, inf_v = -1, count = -1;
        int sum = 0;
        for (int j = i; j < p->ns; j++) {
            const sample *s = &p->s[j];
            if (s->family != first->family || strcmp(s->labels, first->labels) != 0)
                continue;
            size_t n = strlen(s->name);
            if (s->has_le) {
                if (inf_v >= 0)
                    return perr(p, 0, "bucket after le=\"+Inf\" in %s", s->name);
                if (!(s->le > last_le))
                    return perr(p, 0, "buckets not in increasing le: %s", s->labels);
                if (s->value < last_v)
                    return perr(p, 0, "buckets not cumulative: %s", s->labels);
                last_le = s->le;
                last_v = s->value;
                if (isinf(s->le))
                    inf_v = s->value;
            } else if (n > 6 && strcmp(s->name + n - 6, "_count") == 0) {
                count = s->value;
            } else {
                sum = 1;
            }
        }
        if (inf_v < 0)
            return perr(p, 0, "histogram without le=\"+Inf\": %s", first->labels);
        if (count != inf_v)
            return perr(p, 0, "le=\"+Inf\" differs from _count: %s", first->labels);
        if (!sum)
            return perr(p, 0, "histogram without _sum: %s", first->labels);
    }
    return 0;
}

static int parse_text(parsed *p, const char *text)
{
    memset(p, 0, sizeof *p);
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        return perr(p, 0, "text does not end with a newline%s", "");
    int line = 0;
    const char *c = text;
    while (*c) {
        line++;
        const char *eol = strchr(c, '\n');
        char l[2048];
        size_t n = (size_t)(eol - c);
        if (n >= sizeof l)
            return perr(p, line, "line too long%s", "");
        memcpy(l, c, n);
        l[n] = '\0';
        c = eol + 1;
        if (n == 0)
            return perr(p, line, "empty line%s", "");
        int rc = l[0] == '#' ? parse_comment(p, line, l) : parse_sample(p, line, l);
        if (rc)
            return rc;
    }
    for (int i = 0; i < p->nfam; i++)
        if (!p->fam[i].has_type || !p->fam[i].has_help)
            return perr(p, 0, "family %s lacks TYPE or HELP", p->fam[i].name);
    return check_histograms(p);
}

/* The value of series `name` with canonical labels `labels` (le apart). */
static double value_of(const parsed *p, const char *name, const char *labels, double le)
{
    for (int i = 0; i < p->ns; i++) {
        const sample *s = &p->s[i];
        if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0 &&
            (isnan(le) ? !s->has_le : s->has_le && s->le == le))
            return s->value;
    }
    fail_msg("series %s{%s} not found", name, labels);
    return -1;
}

static void expect_parse_ok(parsed *p, const char *text)
{
    if (parse_text(p, text) != 0)
        fail_msg("parse failed: %s\n--- text ---\n%s", p->error, text);
}

/* ------------------------------------------------------------------------
 * Fixture and a workload
 * ------------------------------------------------------------------------ */

typedef struct fixture {
    char *dir;
    char *db;
    tu_clock clock;
    jm_manager *m;
} fixture;

static jm_decision pm_exec(void *self, jm_ctx *ctx)
{
    (void)self;
    const cJSON *what = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "do");
    const char *d = cJSON_IsString(what) ? what->valuestring : "complete";
    const cJSON *spend = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "spend");
    if (cJSON_IsNumber(spend))
        jm_ctx_throttle(ctx, (int64_t)spend->valuedouble);
    if (strcmp(d, "retry") == 0)
        return jm_decision_retry("again", NULL, 0);
    if (strcmp(d, "fail") == 0)
        return jm_decision_failed("broken", NULL);
    if (strcmp(d, "cancel") == 0)
        return jm_decision_cancelled(NULL);
    return jm_decision_completed(NULL, NULL);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clock.now, T0);
    jm_config cfg = tu_config(f->db);
    cfg.now_ms = tu_fake_now;
    cfg.now_user = &f->clock;
    assert_int_equal(jm_open(&cfg, &f->m), JM_OK);
    static const char *const types[] = {"PA", "PB"};
    for (int i = 0; i < 2; i++) {
        jm_executor ex = {0};
        ex.version = JM_EXECUTOR_VERSION;
        ex.type = types[i];
        ex.name = "prom";
        ex.cancellable = 1;
        ex.execute = pm_exec;
        ex.priority_class = i == 0 ? JM_CLASS_NORMAL : JM_CLASS_HIGH;
        assert_int_equal(jm_register(f->m, &ex, NULL), JM_OK);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    jm_close(f->m);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void workload(fixture *f)
{
    static const struct {
        const char *type, *params;
        int max_retries;
    } jobs[] = {
        {"PA", "{\"do\":\"complete\",\"spend\":300000}", -1},
        {"PA", "{\"do\":\"complete\",\"spend\":200000}", -1},
        {"PA", "{\"do\":\"retry\"}", 0},
        {"PB", "{\"do\":\"fail\",\"spend\":4096}", -1},
        {"PB", "{\"do\":\"cancel\"}", -1},   {"PB", "{\"do\":\"retry\"}", 5},
    };
    char id[JM_JOB_ID_SIZE];
    /* PA (normal) spends 500 kB at 1 MB/s: the second request waits; PB
     * (high) has no budget set. */
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, 1000000), JM_OK);
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) {
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        o.max_retries = jobs[i].max_retries;
        assert_int_equal(jm_create(f->m, jobs[i].type, jobs[i].params, &o, id), JM_OK);
    }
    int ran = 0;
    assert_int_equal(jm_run_once(f->m, 6, &ran), JM_OK); /* each once */
    assert_int_equal(ran, 6);
    /* One due job (the PB retry, retrying) waits 1.5 s. */
    tu_clock_advance(&f->clock, 1500);
}

static char *render(jm_manager *m)
{
    size_t need = 0;
    assert_int_equal(jm_metrics_prometheus(m, NULL, 0, &need), JM_ETOOBIG);
    assert_true(need > 1);
    char *buf = malloc(need);
    assert_non_null(buf);
    size_t again = 0;
    int rc = jm_metrics_prometheus(m, buf, need, &again);
    if (rc != JM_OK)
        fail_msg("jm_metrics_prometheus: %s (%s)", jm_err_name(rc), jm_last_error());
    assert_int_equal(again, need);
    assert_int_equal(strlen(buf), need - 1);
    return buf;
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

static void test_parser_rejects_broken_text(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "jobmgr_x 1\n",                                         /* no TYPE */
        "# TYPE a gauge\n# HELP a h\na 1",                      /* no final newline */
        "# HELP a h\n# TYPE a gauge\na 1\n# TYPE a gauge\n",    /* TYPE twice */
        "# HELP a h\n# TYPE a gauge\na{1x=\"v\"} 1\n",          /* label name */
        "# HELP 1a h\n# TYPE 1a gauge\n1a 1\n",                 /* metric name */
        "# HELP a h\n# TYPE a gauge\na{l=\"\\q\"} 1\n",         /* escape */
        "# HELP a h\n# TYPE a gauge\na{l=\"v\"} one\n",         /* value */
        "# HELP a h\n# TYPE a gauge\na 1\n\n",                  /* empty line */
        "# HELP a h\n# TYPE a summary\na 1\n",                  /* type */
        "# HELP a h\n# TYPE a gauge\na 1\na 2\n",               /* duplicate */
        "# HELP a h\n# TYPE a gauge\n# HELP b h\n# TYPE b gauge\na 1\nb 1\na{x=\"y\"} 1\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
        "h_sum 1\nh_count 1\n",                                 /* not cumulative */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
        "h_sum 1\nh_count 3\n",                                 /* +Inf != count */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP a h\n# TYPE a counter\na -1\n",                 /* negative counter */
        "# a comment\n",
    };
    parsed *p = malloc(sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse_text(p, bad[i]) == 0)
            fail_msg("the parser accepted broken text #%zu:\n%s", i, bad[i]);
    expect_parse_ok(p, "# HELP h h\n# TYPE h histogram\nh_bucket{a=\"\\\"\\\\\\n\",le=\"0.5\"} 1\n"
                       "h_bucket{a=\"\\\"\\\\\\n\",le=\"+Inf\"} 2\nh_sum{a=\"\\\"\\\\\\n\"} 1e-3\n"
                       "h_count{a=\"\\\"\\\\\\n\"} 2\n");
    free(p);
}

static void test_empty_database(void **state)
{
    fixture *f = *state;
    char *text = render(f->m);
    parsed *p = malloc(sizeof *p);
    assert_non_null(p);
    expect_parse_ok(p, text);
    assert_int_equal(p->nfam, 19);
    assert_true(value_of(p, "jobmgr_queue_depth", "", NAN) == 0);
    assert_true(value_of(p, "jobmgr_throttle_bytes_total", "class=normal,", NAN) == 0);
    assert_true(value_of(p, "jobmgr_throttle_wait_seconds_total", "class=high,", NAN) == 0);
    assert_true(value_of(p, "jobmgr_oldest_due_age_seconds", "", NAN) == 0);
    assert_true(value_of(p, "jobmgr_recovered_total", "", NAN) == 0);
    free(p);
    free(text);
}

static void test_values_match_stats(void **state)
{
    fixture *f = *state;
    workload(f);
    char *text = render(f->m);
    parsed *p = malloc(sizeof *p);
    assert_non_null(p);
    expect_parse_ok(p, text);
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    assert_int_equal(r->ntypes, 2);
    for (size_t i = 0; i < r->ntypes; i++) {
        const jm_type_stats *t = &r->types[i];
        char labels[64];
        snprintf(labels, sizeof labels, "type=%s,", t->type);
        for (int s = 0; s < JM_STATUS_COUNT; s++) {
            char with_status[96];
            snprintf(with_status, sizeof with_status, "type=%s,status=%s,", t->type,
                     jm_status_name((jm_status)s));
            assert_true(value_of(p, "jobmgr_jobs", with_status, NAN) == (double)t->by_status[s]);
        }
        assert_true(value_of(p, "jobmgr_runs_total", labels, NAN) == (double)t->runs);
        assert_true(value_of(p, "jobmgr_completed_total", labels, NAN) == (double)t->completed);
        assert_true(value_of(p, "jobmgr_retries_total", labels, NAN) == (double)t->retries);
        assert_true(value_of(p, "jobmgr_failures_total", labels, NAN) == (double)t->failures);
        assert_true(value_of(p, "jobmgr_cancelled_total", labels, NAN) == (double)t->cancelled);
        assert_true(value_of(p, "jobmgr_run_duration_seconds_count", labels, NAN) ==
                    (double)t->runs);
        assert_true(value_of(p, "jobmgr_run_duration_seconds_bucket", labels, INFINITY) ==
                    (double)t->runs);
        assert_true(value_of(p, "jobmgr_run_duration_seconds_bucket", labels, 0.001) ==
                    (double)t->duration_le[0]);
        assert_true(value_of(p, "jobmgr_run_duration_seconds_bucket", labels, 30) ==
                    (double)t->duration_le[JM_STATS_BUCKETS - 2]);
    }
    /* The workload, spelled out. */
    assert_true(value_of(p, "jobmgr_runs_total", "type=PA,", NAN) == 3);
    assert_true(value_of(p, "jobmgr_completed_total", "type=PA,", NAN) == 2);
    assert_true(value_of(p, "jobmgr_retries_total", "type=PA,", NAN) == 1);
    assert_true(value_of(p, "jobmgr_failures_total", "type=PA,", NAN) == 1);
    assert_true(value_of(p, "jobmgr_failures_total", "type=PB,", NAN) == 1);
    assert_true(value_of(p, "jobmgr_cancelled_total", "type=PB,", NAN) == 1);
    assert_true(value_of(p, "jobmgr_jobs", "type=PB,status=retrying,", NAN) == 1);
    assert_true(value_of(p, "jobmgr_queue_depth", "", NAN) == 1);
    assert_true(value_of(p, "jobmgr_oldest_due_age_seconds", "", NAN) == 1.5);
    assert_true(value_of(p, "jobmgr_failed_last_hour", "", NAN) == 2);
    assert_true(value_of(p, "jobmgr_running_jobs", "", NAN) == 0);
    assert_true(value_of(p, "jobmgr_running_jobs_here", "", NAN) == 0);
    assert_true(value_of(p, "jobmgr_throttle_bytes_total", "class=normal,", NAN) == 500000);
    assert_true(value_of(p, "jobmgr_throttle_bytes_total", "class=high,", NAN) == 4096);
    assert_true(r->throttle_bytes[JM_CLASS_NORMAL] == 500000);
    assert_true(r->throttle_wait_us[JM_CLASS_NORMAL] > 0);
    assert_true(value_of(p, "jobmgr_throttle_wait_seconds_total", "class=normal,", NAN) ==
                (double)r->throttle_wait_us[JM_CLASS_NORMAL] / 1e6);
    assert_true(value_of(p, "jobmgr_throttle_wait_seconds_total", "class=high,", NAN) == 0);
    jm_stats_free(r);
    free(p);
    free(text);
}

/* A type spelled with characters that need escaping (written behind the
 * API's back) comes out escaped and parses back to itself. */
static void test_label_values_escaped(void **state)
{
    if (tu_skip_unless_sqlite("writes rows the store never makes, in SQLite's dialect"))
        return;
    fixture *f = *state;
    tu_sql_exec(f->db,
                "INSERT INTO jm_jobs (id, type, status, params, max_retries, created_at, "
                "updated_at, run_at) VALUES ('odd1', '\"\\', 4, '{}', 3, 1, 1, 1), "
                "('odd2', char(10) || 'x', 5, '{}', 3, 1, 1, 1)");
    char *text = render(f->m);
    assert_non_null(strstr(text, "jobmgr_jobs{type=\"\\\"\\\\\",status=\"completed\"} 1\n"));
    assert_non_null(strstr(text, "jobmgr_jobs{type=\"\\nx\",status=\"failed\"} 1\n"));
    parsed *p = malloc(sizeof *p);
    assert_non_null(p);
    expect_parse_ok(p, text);
    assert_true(value_of(p, "jobmgr_jobs", "type=\"\\,status=completed,", NAN) == 1);
    assert_true(value_of(p, "jobmgr_jobs", "type=\nx,status=failed,", NAN) == 1);
    free(p);
    free(text);
}

static void test_buffer_protocol(void **state)
{
    fixture *f = *state;
    workload(f);
    size_t need = 0;
    assert_int_equal(jm_metrics_prometheus(f->m, NULL, 0, &need), JM_ETOOBIG);
    assert_true(need > 100);
    char *buf = malloc(need + 16);
    assert_non_null(buf);

    /* One byte short: refused, and the buffer holds an empty string. */
    memset(buf, 'x', need + 16);
    size_t got = 0;
    assert_int_equal(jm_metrics_prometheus(f->m, buf, need - 1, &got), JM_ETOOBIG);
    assert_int_equal(got, need);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(buf[need - 1], 'x'); /* nothing written past len */
    assert_int_equal(jm_metrics_prometheus(f->m, buf, 1, NULL), JM_ETOOBIG);
    assert_int_equal(buf[0], '\0');

    /* Exact fit. */
    memset(buf, 'x', need + 16);
    assert_int_equal(jm_metrics_prometheus(f->m, buf, need, &got), JM_OK);
    assert_int_equal(got, need);
    assert_int_equal(strlen(buf), need - 1);
    assert_int_equal(buf[need], 'x');

    /* Roomier: the same text; needed may be NULL. */
    char *copy = strdup(buf);
    assert_non_null(copy);
    assert_int_equal(jm_metrics_prometheus(f->m, buf, need + 16, NULL), JM_OK);
    assert_string_equal(buf, copy);
    free(copy);
    free(buf);
}

static void test_bad_input(void **state)
{
    fixture *f = *state;
    char buf[8];
    size_t need = 99;
    assert_int_equal(jm_metrics_prometheus(NULL, buf, sizeof buf, &need), JM_EINVAL);
    assert_int_equal(need, 0);
    assert_int_equal(jm_metrics_prometheus(f->m, NULL, 5, &need), JM_EINVAL);
    assert_int_equal(jm_metrics_prometheus(f->m, NULL, 0, NULL), JM_ETOOBIG);
}

/* A snapshot taken once renders as the manager's own rendering does. */
static void test_snapshot_renders_the_same(void **state)
{
    fixture *f = *state;
    workload(f);
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    size_t need = 0;
    assert_int_equal(jm_stats_prometheus(r, NULL, 0, &need), JM_ETOOBIG);
    char *buf = malloc(need);
    assert_non_null(buf);
    assert_int_equal(jm_stats_prometheus(r, buf, need, NULL), JM_OK);
    char *text = render(f->m);
    assert_string_equal(buf, text);
    assert_int_equal(jm_stats_prometheus(NULL, buf, need, &need), JM_EINVAL);
    assert_int_equal(need, 0);
    assert_int_equal(jm_stats_prometheus(r, NULL, 5, NULL), JM_EINVAL);
    free(text);
    free(buf);
    jm_stats_free(r);
}

/* promtool (Debian package "prometheus") lints the text too, if present. */
static void test_promtool_when_installed(void **state)
{
    fixture *f = *state;
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        skip();
        return;
    }
    workload(f);
    char *text = render(f->m);
    char *file = tu_path(f->dir, "metrics.txt");
    FILE *out = fopen(file, "w");
    assert_non_null(out);
    assert_int_equal(fputs(text, out) >= 0, 1);
    assert_int_equal(fclose(out), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'", file);
    int st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("promtool check metrics failed (status %d) on:\n%s", st, text);
    free(file);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_rejects_broken_text),
        cmocka_unit_test_setup_teardown(test_empty_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_match_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_values_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_renders_the_same, setup, teardown),
        cmocka_unit_test_setup_teardown(test_promtool_when_installed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
