/*
 * table.c: human output: aligned columns, colour, progress bars.
 *
 * Colour is used only when stdout is a terminal, NO_COLOR is unset or empty
 * (https://no-color.org) and --no-color was not given. Widths count UTF-8
 * code points, which is right for the narrow text jobs carry; it does not
 * try to measure double-width characters.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Spaces between two columns. */
#define COLUMN_GAP 2

struct cli_table {
    size_t ncols;
    char **headers;
    char **cells;       /* nrows * ncols */
    cli_color *colors;  /* nrows * ncols */
    size_t nrows, cap;
    unsigned char *right; /* per column: right-aligned */
};

int cli_use_color(const cli_global *g)
{
    if (g->no_color)
        return 0;
    const char *nc = getenv("NO_COLOR");
    if (nc && *nc)
        return 0;
    return isatty(STDOUT_FILENO);
}

cli_color cli_status_color(jm_status s)
{
    switch (s) {
    case JM_STATUS_RUNNING:
        return CLI_COLOR_CYAN;
    case JM_STATUS_RETRYING:
        return CLI_COLOR_YELLOW;
    case JM_STATUS_COMPLETED:
        return CLI_COLOR_GREEN;
    case JM_STATUS_FAILED:
        return CLI_COLOR_RED;
    case JM_STATUS_CANCELLED:
        return CLI_COLOR_MAGENTA;
    case JM_STATUS_NEW:
    case JM_STATUS_PAUSED:
        return CLI_COLOR_DIM;
    default:
        return CLI_COLOR_NONE;
    }
}

static const char *color_code(cli_color c)
{
    switch (c) {
    case CLI_COLOR_BOLD:
        return "\033[1m";
    case CLI_COLOR_DIM:
        return "\033[2m";
    case CLI_COLOR_RED:
        return "\033[31m";
    case CLI_COLOR_GREEN:
        return "\033[32m";
    case CLI_COLOR_YELLOW:
        return "\033[33m";
    case CLI_COLOR_BLUE:
        return "\033[34m";
    case CLI_COLOR_MAGENTA:
        return "\033[35m";
    case CLI_COLOR_CYAN:
        return "\033[36m";
    default:
        return "";
    }
}

void cli_put_colored(FILE *out, int enabled, cli_color c, const char *text)
{
    if (enabled && c != CLI_COLOR_NONE)
        fprintf(out, "%s%s\033[0m", color_code(c), text);
    else
        fputs(text, out);
}

size_t cli_text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            w++;
    return w;
}

const char *cli_text_cut(const char *s, size_t width, char *buf, size_t len)
{
    if (!s)
        s = "";
    if (cli_text_width(s) <= width) {
        snprintf(buf, len, "%s", s);
    } else {
        /* Keep width-1 code points and mark the cut. */
        const char *ellipsis = "\xe2\x80\xa6"; /* … */
        size_t keep = width ? width - 1 : 0, w = 0, i = 0;
        while (s[i] && len > 4 && i < len - 4) {
            if (((unsigned char)s[i] & 0xC0) != 0x80) {
                if (w == keep)
                    break;
                w++;
            }
            buf[i] = s[i];
            i++;
        }
        buf[i] = '\0';
        if (width)
            strncat(buf, ellipsis, len - strlen(buf) - 1);
    }
    /* Line breaks and tabs would break the columns: show them as spaces. */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    return buf;
}

const char *cli_progress_bar(double fraction, size_t width, char *buf, size_t len)
{
    if (fraction < 0 || fraction != fraction)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    if (len < width + 8)
        width = len > 8 ? len - 8 : 0;
    size_t filled = (size_t)(fraction * (double)width + 0.5);
    size_t i = 0;
    buf[i++] = '[';
    for (size_t k = 0; k < width; k++)
        buf[i++] = k < filled ? '#' : '.';
    buf[i++] = ']';
    snprintf(buf + i, len - i, " %3d%%", (int)(fraction * 100 + 0.5));
    return buf;
}

/* Copies a cell; line breaks and tabs would break the columns, so they
 * become spaces. */
static char *dup_text(const char *s)
{
    char *d = strdup(s ? s : "-");
    for (char *p = d; p && *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    return d;
}

cli_table *cli_table_new(size_t ncols, const char *const *headers)
{
    cli_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    t->headers = calloc(ncols, sizeof *t->headers);
    t->right = calloc(ncols, 1);
    if (!t->headers || !t->right)
        goto fail;
    for (size_t c = 0; c < ncols; c++)
        if (!(t->headers[c] = dup_text(headers[c])))
            goto fail;
    return t;
fail:
    cli_table_free(t);
    return NULL;
}

int cli_table_add(cli_table *t, const char *const *cells, const cli_color *colors)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, cap * t->ncols * sizeof *nc);
        if (!nc)
            return -1;
        t->cells = nc;
        cli_color *ncol = realloc(t->colors, cap * t->ncols * sizeof *ncol);
        if (!ncol)
            return -1;
        t->colors = ncol;
        t->cap = cap;
    }
    size_t base = t->nrows * t->ncols;
    for (size_t c = 0; c < t->ncols; c++) {
        t->cells[base + c] = dup_text(cells[c]);
        t->colors[base + c] = colors ? colors[c] : CLI_COLOR_NONE;
        if (!t->cells[base + c]) {
            for (size_t k = 0; k < c; k++)
                free(t->cells[base + k]);
            return -1;
        }
    }
    t->nrows++;
    return 0;
}

void cli_table_align_right(cli_table *t, size_t col)
{
    if (col < t->ncols)
        t->right[col] = 1;
}

/* Prints one cell padded to `width`, counting what is already on the line
 * against `max_width` (0: unlimited). Returns the columns used. */
static size_t put_cell(FILE *out, const char *text, cli_color color, int use_color,
                       size_t width, int right, int last, size_t used, size_t max_width)
{
    size_t w = cli_text_width(text);
    size_t pad = width > w ? width - w : 0;
    char cut[1024];
    if (max_width) {
        size_t room = max_width > used ? max_width - used : 0;
        if (w > room) {
            text = cli_text_cut(text, room, cut, sizeof cut);
            w = cli_text_width(text);
            pad = 0;
        } else if (w + pad > room) {
            pad = room - w;
        }
    }
    if (last && !right)
        pad = 0; /* no trailing spaces */
    if (right)
        fprintf(out, "%*s", (int)pad, "");
    cli_put_colored(out, use_color, color, text);
    if (!right)
        fprintf(out, "%*s", (int)pad, "");
    return w + pad;
}

void cli_table_print(const cli_table *t, FILE *out, int color, size_t max_width)
{
    size_t *widths = calloc(t->ncols, sizeof *widths);
    if (!widths)
        return;
    for (size_t c = 0; c < t->ncols; c++) {
        widths[c] = cli_text_width(t->headers[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t w = cli_text_width(t->cells[r * t->ncols + c]);
            if (w > widths[c])
                widths[c] = w;
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        size_t used = 0;
        for (size_t c = 0; c < t->ncols; c++) {
            int last = c + 1 == t->ncols;
            const char *text = r == 0 ? t->headers[c] : t->cells[(r - 1) * t->ncols + c];
            cli_color col = r == 0 ? CLI_COLOR_BOLD : t->colors[(r - 1) * t->ncols + c];
            if (max_width && used >= max_width)
                break;
            used += put_cell(out, text, col, color, widths[c], t->right[c], last, used,
                             max_width);
            if (!last && (!max_width || used + COLUMN_GAP <= max_width)) {
                fprintf(out, "%*s", COLUMN_GAP, "");
                used += COLUMN_GAP;
            }
        }
        fputc('\n', out);
    }
    free(widths);
}

void cli_table_free(cli_table *t)
{
    if (!t)
        return;
    for (size_t c = 0; t->headers && c < t->ncols; c++)
        free(t->headers[c]);
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->headers);
    free(t->cells);
    free(t->colors);
    free(t->right);
    free(t);
}
