/* Writing man(7) pages: text escaped for roff, the help texts of
 * lib/optable.h as paragraphs, and sections of the Markdown files in docs/
 * (a small subset: paragraphs, ### headings, lists, tables, fenced blocks,
 * `code` and **bold**) so that a man page says what the docs say. */
#ifndef TALLY_MAN_ROFF_H
#define TALLY_MAN_ROFF_H

#include <stdio.h>

#include "lib/optable.h"

/* Text on one output line: roff's specials escaped, `code` and **bold** in
 * bold. Every '-' becomes \- so that options render as typed. */
void roff_text(FILE *f, const char *s, size_t n);
/* A help text of lib/optable.h: its paragraphs filled, its lines indented
 * by two spaces shown as they are. */
void roff_help(FILE *f, const char *text);
/* .TP items for a table of options. */
void roff_options(FILE *f, const struct opt_doc *o);
/* One form per line: "\fBtally lease create\fR [--wait] ..." */
void roff_synopsis(FILE *f, const char *head, const char *synopsis);

/* The body of the section "## heading" of a Markdown file (up to the next
 * heading of that level or above) as man(7). Lines between
 * "<!-- generated" and "<!-- end" are left out: the page makes them itself.
 * Returns -1, with a message, when the file or the section is missing. */
int roff_md_section(FILE *f, const char *md_path, const char *heading);

#endif
