/* A command's options and help as one table.
 *
 * Every command of `tally` and `tallyd` describes itself once, as a struct
 * cmd_doc: getopt_long()'s arrays, the --help text, the man pages and the
 * bash completion are all made from it (man/gen.c makes the last two at
 * build time), so none of them can list an option the parser does not take,
 * or miss one it does.
 *
 * Text fields are plain text for a terminal: '\n' ends a line of --help; in
 * a man page the lines of a paragraph are filled again, an empty line starts
 * a paragraph, and lines indented by two or more spaces are shown as they
 * are (file lists, examples). */
#ifndef TALLY_OPTABLE_H
#define TALLY_OPTABLE_H

#include <getopt.h>
#include <stdio.h>

enum opt_flags {
	OPT_SHORT = 1 << 0,     /* val, a letter, is also the short option -x */
	OPT_REPEAT = 1 << 1,    /* may be given more than once */
};

struct opt_doc {
	const char *name;       /* long option without "--"; NULL ends a table */
	int val;                /* what getopt_long returns for it */
	const char *arg;        /* NULL: a flag; else its value's name: N, FILE, DIR,
				 * ADDR, or the choices "qemu|kvm" */
	const char *help;       /* what it does */
	unsigned flags;         /* enum opt_flags */
};

struct cmd_doc {
	const char *name;       /* "lease create"; "" for a program's only command */
	const char *synopsis;   /* operands and options after the name. '\n' starts
				 * another form of the command; a line that starts
				 * with a space goes on with the form before it */
	const char *summary;    /* one line, for lists of commands */
	const char *description;
	const struct opt_doc *opts;   /* its own options, or NULL */
	const char *epilog;     /* after the options: exit codes, output; or NULL */
};

#define OPTABLE_MAX 64

/* getopt_long()'s arguments for a command's own options followed by the
 * shared ones (common may be NULL). */
struct optable {
	struct option longopts[OPTABLE_MAX + 1];
	char shortopts[2 * OPTABLE_MAX + 8];
};

/* Fills t from the tables. prefix starts the short option string (":" to
 * have getopt_long report a missing value as ':', "+:" to stop at the
 * first operand as well). Returns 0, or -1 when the tables hold more than
 * OPTABLE_MAX options (a programming error the unit tests catch). */
int optable_build(struct optable *t, const char *prefix, const struct opt_doc *own,
		  const struct opt_doc *common);

/* "-i, --identity FILE" or "--timeout S" into buf[cap]. */
void optable_label(const struct opt_doc *o, char *buf, size_t cap);

/* The --help text: usage lines ("usage: PROG NAME SYNOPSIS"), the
 * description, the options (own, then common) in one aligned column, and
 * the epilog. */
void optable_help(FILE *f, const char *prog, const struct cmd_doc *d,
		  const struct opt_doc *common);

#endif
