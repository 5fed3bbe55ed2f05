/* man(7) output (man/roff.h). */
#include "man/roff.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void roff_text(FILE *f, const char *s, size_t n)
{
	bool code = false, bold = false;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (i == 0 && (c == '.' || c == '\''))
			fputs("\\&", f);
		if (c == '`') {
			fputs(code ? "\\fR" : "\\fB", f);
			code = !code;
		} else if (c == '*' && i + 1 < n && s[i + 1] == '*') {
			fputs(bold ? "\\fR" : "\\fB", f);
			bold = !bold;
			i++;
		} else if (c == '\\') {
			fputs("\\e", f);
		} else if (c == '-') {
			fputs("\\-", f);
		} else {
			fputc(c, f);
		}
	}
	if (code || bold)
		fputs("\\fR", f);
}

static bool indented(const char *line)
{
	return line[0] == ' ' && line[1] == ' ';
}

void roff_help(FILE *f, const char *text)
{
	bool verbatim = false, start = true;

	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");

		if (n == 0) {
			if (verbatim)
				fputs(".fi\n.RE\n", f);
			verbatim = false;
			start = true;
		} else if (indented(p)) {
			if (!verbatim)
				fputs(start ? ".PP\n.RS 2\n.nf\n" : ".RS 2\n.nf\n", f);
			verbatim = true;
			start = false;
			roff_text(f, p + 2, n - 2);
			fputc('\n', f);
		} else {
			if (verbatim)
				fputs(".fi\n.RE\n", f);
			if (start || verbatim)
				fputs(".PP\n", f);
			verbatim = start = false;
			roff_text(f, p, n);
			fputc('\n', f);
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	if (verbatim)
		fputs(".fi\n.RE\n", f);
}

void roff_options(FILE *f, const struct opt_doc *o)
{
	for (; o && o->name; o++) {
		fputs(".TP\n", f);
		if (o->flags & OPT_SHORT)
			fprintf(f, "\\fB\\-%c\\fR, ", o->val);
		fputs("\\fB\\-\\-", f);
		roff_text(f, o->name, strlen(o->name));
		fputs("\\fR", f);
		if (o->arg) {
			fputs(" \\fI", f);
			roff_text(f, o->arg, strlen(o->arg));
			fputs("\\fR", f);
		}
		fputc('\n', f);
		/* The help's line breaks are for a terminal: filled here. */
		for (const char *p = o->help; *p;) {
			size_t n = strcspn(p, "\n");
			roff_text(f, p, n);
			fputc('\n', f);
			p += n + (p[n] == '\n');
		}
	}
}

void roff_synopsis(FILE *f, const char *head, const char *synopsis)
{
	bool first = true;

	fputs(".nf\n", f);
	for (const char *p = synopsis;; first = false) {
		size_t n = strcspn(p, "\n");
		bool more = *p == ' ';

		while (*p == ' ' && n) {
			p++;
			n--;
		}
		if (more && !first) {
			fputs("    ", f);
		} else {
			fputs("\\fB", f);
			roff_text(f, head, strlen(head));
			fputs("\\fR ", f);
		}
		roff_text(f, p, n);
		fputc('\n', f);
		p += n;
		if (*p != '\n')
			break;
		p++;
	}
	fputs(".fi\n", f);
}

/* --- Markdown ------------------------------------------------------------ */

/* Cells of a table row "| a | b |", trimmed, into cells[max]. */
static size_t split_row(char *row, char **cells, size_t max)
{
	size_t n = 0;
	char *p = row + 1;

	while (n < max && *p) {
		char *bar = strchr(p, '|');
		if (!bar)
			break;
		*bar = '\0';
		while (*p == ' ')
			p++;
		for (char *e = bar - 1; e >= p && *e == ' '; e--)
			*e = '\0';
		cells[n++] = p;
		p = bar + 1;
	}
	return n;
}

/* A table as a list: each row's first cells as the tag, the others under
 * it, each named by its column's heading. */
static void md_table_row(FILE *f, char *line, char **head, size_t nhead, bool *have_head)
{
	static char head_buf[4096];
	char *cells[8];
	size_t n;

	if (strspn(line, "|-: ") == strlen(line))
		return;   /* the |---|---| rule */
	if (!*have_head) {
		memcpy(head_buf, line, strlen(line) + 1);   /* both hold a line of 4096 */
		split_row(head_buf, head, nhead);
		*have_head = true;
		return;
	}
	n = split_row(line, cells, 8);
	if (n == 0)
		return;
	fputs(".TP\n", f);
	roff_text(f, cells[0], strlen(cells[0]));
	fputc('\n', f);
	for (size_t i = 1; i < n; i++) {
		if (!cells[i][0])
			continue;
		if (n > 2 && head[i]) {
			fputs("\\fI", f);
			roff_text(f, head[i], strlen(head[i]));
			fputs(":\\fR ", f);
		}
		roff_text(f, cells[i], strlen(cells[i]));
		fputs(i + 1 < n ? "\n.br\n" : "\n", f);
	}
}

int roff_md_section(FILE *f, const char *md_path, const char *heading)
{
	FILE *in = fopen(md_path, "re");
	char line[4096], *head[8] = { 0 };
	size_t level = 0;
	bool inside = false, fence = false, generated = false, para = false, table = false;
	bool have_head = false, found = false;

	if (!in) {
		fprintf(stderr, "gen: cannot open %s\n", md_path);
		return -1;
	}
	while (fgets(line, sizeof(line), in)) {
		size_t len = strcspn(line, "\n"), hashes = strspn(line, "#");
		line[len] = '\0';
		if (!inside) {
			if (hashes >= 2 && line[hashes] == ' ' && !strcmp(line + hashes + 1, heading)) {
				inside = found = true;
				level = hashes;
			}
			continue;
		}
		if (!fence && hashes > 0 && hashes <= level && line[hashes] == ' ')
			break;
		if (!strncmp(line, "<!-- generated", 14)) {
			generated = true;
			continue;
		}
		if (!strncmp(line, "<!-- end", 8)) {
			generated = false;
			continue;
		}
		if (generated)
			continue;
		if (!strncmp(line, "```", 3)) {
			fputs(fence ? ".fi\n.RE\n" : ".PP\n.RS 4\n.nf\n", f);
			fence = !fence;
			para = false;
			continue;
		}
		if (fence) {
			roff_text(f, line, len);
			fputc('\n', f);
			continue;
		}
		if (line[0] == '|') {
			if (!table)
				have_head = false;
			table = true;
			md_table_row(f, line, head, 8, &have_head);
			continue;
		}
		table = false;
		if (len == 0) {
			para = false;
			continue;
		}
		if (hashes > level && line[hashes] == ' ') {
			fputs(".SS \"", f);
			roff_text(f, line + hashes + 1, len - hashes - 1);
			fputs("\"\n", f);
			para = false;
			continue;
		}
		if (!strncmp(line, "- ", 2)) {
			fputs(".IP \\(bu 2\n", f);
			roff_text(f, line + 2, len - 2);
			fputc('\n', f);
			para = true;
			continue;
		}
		size_t digits = strspn(line, "0123456789");
		if (digits && !strncmp(line + digits, ". ", 2)) {
			fprintf(f, ".IP %.*s. 4\n", (int)digits, line);
			roff_text(f, line + digits + 2, len - digits - 2);
			fputc('\n', f);
			para = true;
			continue;
		}
		if (!para)
			fputs(".PP\n", f);
		para = true;
		const char *p = line + strspn(line, " ");
		roff_text(f, p, strlen(p));
		fputc('\n', f);
	}
	if (fence)
		fputs(".fi\n.RE\n", f);
	fclose(in);
	if (!found) {
		fprintf(stderr, "gen: %s has no section '%s'\n", md_path, heading);
		return -1;
	}
	return 0;
}
