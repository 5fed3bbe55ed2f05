/* Options and help from one table (lib/optable.h). */
#include "lib/optable.h"

#include <string.h>

/* The widest label that still has its help beside it; a longer one gets
 * its help on the next line. */
#define LABEL_MAX 20

static int add_table(struct optable *t, size_t *n, size_t *s, const struct opt_doc *o)
{
	for (; o && o->name; o++) {
		if (*n == OPTABLE_MAX)
			return -1;
		t->longopts[*n] = (struct option){ o->name, o->arg ? required_argument : no_argument,
						   NULL, o->val };
		(*n)++;
		if (o->flags & OPT_SHORT) {
			t->shortopts[(*s)++] = (char)o->val;
			if (o->arg)
				t->shortopts[(*s)++] = ':';
		}
	}
	return 0;
}

int optable_build(struct optable *t, const char *prefix, const struct opt_doc *own,
		  const struct opt_doc *common)
{
	size_t n = 0, s = strlen(prefix);

	memset(t, 0, sizeof(*t));
	if (s > 4)
		return -1;
	memcpy(t->shortopts, prefix, s);
	if (add_table(t, &n, &s, own) || add_table(t, &n, &s, common))
		return -1;
	return 0;
}

void optable_label(const struct opt_doc *o, char *buf, size_t cap)
{
	if (o->flags & OPT_SHORT)
		snprintf(buf, cap, "-%c, --%s%s%s", o->val, o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
	else
		snprintf(buf, cap, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

static size_t widest(const struct opt_doc *o, size_t w)
{
	char label[128];

	for (; o && o->name; o++) {
		optable_label(o, label, sizeof(label));
		if (strlen(label) > w && strlen(label) <= LABEL_MAX)
			w = strlen(label);
	}
	return w;
}

/* text with every line after the first indented to col. */
static void put_indented(FILE *f, const char *text, size_t col)
{
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");

		fwrite(p, 1, n, f);
		fputc('\n', f);
		p += n;
		if (*p == '\n')
			p++;
		if (*p)
			fprintf(f, "%*s", (int)col, "");
	}
}

static void put_options(FILE *f, const struct opt_doc *o, size_t col)
{
	char label[128];

	for (; o && o->name; o++) {
		optable_label(o, label, sizeof(label));
		if (2 + strlen(label) + 1 <= col)
			fprintf(f, "  %-*s", (int)(col - 2), label);
		else
			fprintf(f, "  %s\n%*s", label, (int)col, "");
		put_indented(f, o->help, col);
	}
}

/* The synopsis: each form after "usage: " or its blanks, its continuation
 * lines aligned under its first operand. */
static void put_synopsis(FILE *f, const char *prog, const struct cmd_doc *d)
{
	char head[160];
	size_t col;
	int first = 1;

	snprintf(head, sizeof(head), "%s%s%s", prog, d->name[0] ? " " : "", d->name);
	col = strlen("usage: ") + strlen(head) + 1;
	for (const char *p = d->synopsis; ; first = 0) {
		size_t n = strcspn(p, "\n");
		int more = p[0] == ' ';

		while (*p == ' ' && n) {
			p++;
			n--;
		}
		if (more && !first)
			fprintf(f, "%*s", (int)col, "");
		else
			fprintf(f, "%s%s%s", first ? "usage: " : "       ", head, n ? " " : "");
		fwrite(p, 1, n, f);
		fputc('\n', f);
		p += n;
		if (*p != '\n')
			break;
		p++;
	}
}

void optable_help(FILE *f, const char *prog, const struct cmd_doc *d,
		  const struct opt_doc *common)
{
	size_t col = widest(common, widest(d->opts, 0)) + 4;

	put_synopsis(f, prog, d);
	if (d->description && d->description[0])
		fprintf(f, "\n%s\n", d->description);
	fputc('\n', f);
	put_options(f, d->opts, col);
	put_options(f, common, col);
	if (d->epilog)
		fprintf(f, "\n%s\n", d->epilog);
}
