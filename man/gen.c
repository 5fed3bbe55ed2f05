/* Makes, at build time, what tally says about itself outside --help, from
 * the same tables the programs parse with:
 *
 *   gen tally.1         tally(1): cli/commands.c's table, each command's
 *                       struct cmd_doc, and docs/CLI.md's exit codes
 *   gen tallyd.8        tallyd(8): daemon/cmdline.c's table, the files the
 *                       config table names, and sections of docs/OPERATING.md
 *   gen tallyd.conf.5   tallyd.conf(5): daemon/config.c's config_keys[]
 *   gen tallyd.conf     the commented /etc/tally/tallyd.conf of the package
 *   gen tally.bash      the bash completion of tally
 *   gen config-md       the table of keys docs/OPERATING.md holds (make
 *                       check-docs checks that the document has it)
 *
 * Run from the top of the source tree (it reads docs/); writes to stdout.
 * SOURCE_DATE_EPOCH, when set, dates the pages (reproducible builds). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/tally.h"
#include "daemon/cmdline.h"
#include "daemon/config.h"
#include "lib/optable.h"
#include "lib/version.h"
#include "man/roff.h"

static void th(FILE *f, const char *name, const char *section, const char *title)
{
	const char *epoch = getenv("SOURCE_DATE_EPOCH");
	time_t t = epoch ? (time_t)strtoll(epoch, NULL, 10) : time(NULL);
	struct tm tm;
	char date[16];

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	fprintf(f, ".TH %s %s \"%s\" \"tally %s\" \"%s\"\n", name, section, date, TALLY_VERSION,
		title);
}

/* Every table must fit getopt_long's arrays: checked here, at build time. */
static int check_table(const struct cmd_doc *d, const struct opt_doc *common)
{
	struct optable t;

	if (optable_build(&t, "+:", d->opts, common) == 0)
		return 0;
	fprintf(stderr, "gen: the options of '%s' do not fit OPTABLE_MAX\n", d->name);
	return -1;
}

/* --- tally(1) ------------------------------------------------------------ */

static void command_section(FILE *f, const struct cmd_doc *d)
{
	char head[64];

	snprintf(head, sizeof(head), "tally %s", d->name);
	fprintf(f, ".SS \"%s\"\n", head);
	roff_synopsis(f, head, d->synopsis);
	roff_help(f, d->description);
	if (d->opts) {
		fputs(".PP\nOptions, besides those every command takes:\n.RS 4\n", f);
		roff_options(f, d->opts);
		fputs(".RE\n", f);
	}
	if (d->epilog)
		roff_help(f, d->epilog);
}

/* $TALLY_* named in the common options' help: the variable stands in for
 * that option. */
static void environment(FILE *f)
{
	for (const struct opt_doc *o = cli_common_opts; o->name; o++) {
		const char *v = strstr(o->help, "$TALLY_");
		size_t n;

		if (!v)
			continue;
		v++;
		n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
		fprintf(f, ".TP\n.B %.*s\nThe default of \\fB\\-\\-%s\\fR.\n", (int)n, v, o->name);
	}
}

static int tally_1(FILE *f)
{
	th(f, "TALLY", "1", "tally manual");
	fputs(".SH NAME\ntally \\- the command line of a tally compute\\-leasing network\n"
	      ".SH SYNOPSIS\n.nf\n\\fBtally\\fR \\fICOMMAND\\fR [\\fISUBCOMMAND\\fR] [\\fIARGS\\fR]"
	      " [\\fB\\-\\-node\\fR \\fIURL\\fR] [\\fB\\-\\-key\\fR \\fIFILE\\fR] "
	      "[\\fB\\-\\-json\\fR]\n\\fBtally help\\fR [\\fICOMMAND\\fR [\\fISUBCOMMAND\\fR]]\n"
	      "\\fBtally\\fR \\fB\\-\\-help\\fR | \\fB\\-\\-version\\fR\n.fi\n"
	      ".SH DESCRIPTION\n", f);
	roff_help(f, cli_intro);
	fputs(".PP\nOptions go after the command's name (\\fBtally lease list \\-\\-all "
	      "\\-\\-json\\fR). Messages and errors go to stderr as \\fBtally: ...\\fR. "
	      "Times are shown in the local time zone as ISO 8601; \\fB\\-\\-json\\fR gives "
	      "them as the chain holds them, in Unix seconds or nanoseconds. Long operations "
	      "show their progress on stderr when it is a terminal.\n", f);
	fputs(".SH OPTIONS\nEvery command takes these:\n", f);
	roff_options(f, cli_common_opts);
	fputs(".SH COMMANDS\n", f);
	for (const struct cli_command *c = cli_commands; c->name; c++) {
		if (!c->subs) {
			if (check_table(c->doc, cli_common_opts))
				return -1;
			command_section(f, c->doc);
			continue;
		}
		for (const struct cli_command *s = c->subs; s->name; s++) {
			if (check_table(s->doc, cli_common_opts))
				return -1;
			command_section(f, s->doc);
		}
	}
	fputs(".SH \"EXIT STATUS\"\n", f);
	if (roff_md_section(f, "docs/CLI.md", "Exit codes"))
		return -1;
	fputs(".SH ENVIRONMENT\n", f);
	environment(f);
	fputs(".SH FILES\n.TP\n.I ~/.config/tally/key.pem\nYour key (\\fBtally key new\\fR), "
	      "unless \\fB\\-\\-key\\fR or \\fBTALLY_KEY\\fR names another.\n"
	      ".TP\n.I ~/.config/tally/ssh/\nThe known_hosts files of \\fBtally lease ssh\\fR, "
	      "beside the key.\n"
	      ".SH \"SEE ALSO\"\n\\fBtallyd\\fR(8), \\fBtallyd.conf\\fR(5); docs/CLI.md and "
	      "docs/PROTOCOL.md of the source.\n", f);
	return 0;
}

/* --- tallyd(8) ----------------------------------------------------------- */

static const struct config_key *key_named(const char *section, const char *key)
{
	for (const struct config_key *k = config_keys; k->section; k++)
		if (!strcmp(k->section, section) && !strcmp(k->key, key))
			return k;
	return NULL;
}

static void file_item(FILE *f, const char *section, const char *key, const char *what)
{
	const struct config_key *k = key_named(section, key);

	fprintf(f, ".TP\n.I %s\n%s (\\fB[%s] %s\\fR in \\fBtallyd.conf\\fR(5)).\n",
		k && k->def ? k->def : "?", what, section, key);
}

static int tallyd_8(FILE *f)
{
	static const char *const from_docs[] = {
		"Running as a service", "Requirements", "Restarts", "The node's clock",
		"Observing",
	};

	if (check_table(&tallyd_doc, NULL))
		return -1;
	th(f, "TALLYD", "8", "tally manual");
	fputs(".SH NAME\ntallyd \\- a tally provider node\n.SH SYNOPSIS\n", f);
	roff_synopsis(f, "tallyd", tallyd_doc.synopsis);
	fputs(".SH DESCRIPTION\n", f);
	roff_help(f, tallyd_doc.description);
	fputs(".PP\nWhat it does with a lease:\n", f);
	if (roff_md_section(f, "docs/OPERATING.md", "What the node does with a lease"))
		return -1;
	fputs(".SH OPTIONS\n", f);
	roff_options(f, tallyd_doc.opts);
	for (size_t i = 0; i < sizeof(from_docs) / sizeof(from_docs[0]); i++) {
		fputs(".SH \"", f);
		for (const char *p = from_docs[i]; *p; p++)
			fputc(*p >= 'a' && *p <= 'z' ? *p - 32 : *p, f);
		fputs("\"\n", f);
		if (roff_md_section(f, "docs/OPERATING.md", from_docs[i]))
			return -1;
	}
	fputs(".SH FILES\n.TP\n.I " TALLYD_CONFIG_DEFAULT "\nThe configuration "
	      "(\\fBtallyd.conf\\fR(5)), as the package installs it: every key commented out, "
	      "at its default.\n.TP\n.I " TALLYD_CONFIG_DEFAULT ".d/*.conf\nDrop-ins read after "
	      "it, in name order; \\fBtally node init \\-\\-production\\fR writes the node's "
	      "settings to \\fI50\\-node.conf\\fR there.\n", f);
	file_item(f, "node", "key", "The node's Ed25519 key, mode 0600");
	file_item(f, "node", "genesis", "The chain's genesis");
	file_item(f, "node", "data_dir", "The ledger, the signer state, the consensus WAL and "
		  "the VMs' files");
	file_item(f, "metering", "pin_dir", "The CPU meter's pinned eBPF programs and maps");
	fputs(".SH \"EXIT STATUS\"\n0 after a clean stop (SIGINT, SIGTERM) or a valid "
	      "\\fB\\-\\-check\\-config\\fR; 1 when the node cannot start (the reason is logged) "
	      "or the configuration is invalid; 2 on a usage error.\n", f);
	fputs(".SH \"SEE ALSO\"\n\\fBtallyd.conf\\fR(5), \\fBtally\\fR(1), \\fBsystemctl\\fR(1), "
	      "\\fBjournalctl\\fR(1); docs/OPERATING.md and docs/KMOD.md of the source.\n", f);
	return 0;
}

/* --- tallyd.conf(5) ------------------------------------------------------ */

/* The value a key shows in docs: its default, its derived default, or its
 * example; *kind says which. */
static const char *shown_value(const struct config_key *k, const char **kind)
{
	if (k->def) {
		*kind = "default";
		return k->def;
	}
	if (k->def_doc) {
		*kind = "default";
		return k->def_doc;
	}
	*kind = "example";
	return k->example;
}

static void value_shape(FILE *f, const struct config_key *k)
{
	if (k->type == CT_CHOICE) {
		roff_text(f, k->choices, strlen(k->choices));
	} else if (k->type == CT_BOOL) {
		fputs("yes|no", f);
	} else if (k->type == CT_U32) {
		fprintf(f, "%llu..%llu", (unsigned long long)k->min, (unsigned long long)k->max);
	} else {
		roff_text(f, k->value ? k->value : "VALUE", strlen(k->value ? k->value : "VALUE"));
	}
}

static int tallyd_conf_5(FILE *f)
{
	th(f, "TALLYD.CONF", "5", "tally manual");
	fputs(".SH NAME\ntallyd.conf \\- configuration of the tally node daemon\n"
	      ".SH SYNOPSIS\n.nf\n" TALLYD_CONFIG_DEFAULT "\n" TALLYD_CONFIG_DEFAULT
	      ".d/*.conf\n.fi\n.SH DESCRIPTION\n", f);
	if (roff_md_section(f, "docs/OPERATING.md", "Configuration"))
		return -1;
	for (const struct config_section *s = config_sections; s->name; s++) {
		fprintf(f, ".SH \"[%s]\"\n", s->name);
		roff_help(f, s->doc);
		for (const struct config_key *k = config_keys; k->section; k++) {
			const char *kind, *v;

			if (strcmp(k->section, s->name))
				continue;
			v = shown_value(k, &kind);
			fprintf(f, ".TP\n\\fB%s\\fR = \\fI", k->key);
			value_shape(f, k);
			fputs("\\fR\n", f);
			roff_text(f, k->doc, strlen(k->doc));
			/* a long value on a line of its own, where it fits */
			fprintf(f, ".%s\n.br\n%s:%s\\fB", k->flags & CK_REPEAT ? " May repeat." : "",
				kind[0] == 'd' ? "Default" : "Example",
				strlen(v) > 40 ? "\n.br\n" : " ");
			roff_text(f, v, strlen(v));
			fputs("\\fR\n", f);
		}
	}
	fputs(".SH \"SEE ALSO\"\n\\fBtallyd\\fR(8), \\fBtally\\fR(1); docs/OPERATING.md of the "
	      "source.\n", f);
	return 0;
}

/* --- the packaged tallyd.conf ------------------------------------------------ */

/* "# " + text, wrapped at 76 columns. */
static void comment(FILE *f, const char *text)
{
	const char *p = text;

	while (*p) {
		size_t n = strlen(p), cut = n;

		if (n > 74) {
			cut = 74;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = n;
		}
		fprintf(f, "# %.*s\n", (int)cut, p);
		p += cut;
		while (*p == ' ')
			p++;
	}
}

static int tallyd_conf(FILE *f)
{
	fputs("# tallyd's configuration: tallyd.conf(5).\n"
	      "#\n"
	      "# Every key is here with its default (or an example), commented out: as it\n"
	      "# comes, this file changes nothing. Put settings of your own in a drop-in,\n"
	      "# " TALLYD_CONFIG_DEFAULT ".d/NAME.conf, read after this file in name order\n"
	      "# (a later value wins; peer and allow lines add up). Package upgrades leave\n"
	      "# drop-ins alone; `tally node init --production` writes the node's own\n"
	      "# settings to 50-node.conf there. Check with `tallyd --check-config`.\n", f);
	for (const struct config_section *s = config_sections; s->name; s++) {
		bool placeholder = strchr(s->name, '.') != NULL;

		fputs("\n", f);
		comment(f, s->doc);
		if (placeholder)
			fprintf(f, "#[%s]\n", !strcmp(s->name, "image.NAME") ? "image.debian-12" :
				"gpu.0000:65:00.0");
		else
			fprintf(f, "[%s]\n", s->name);
		for (const struct config_key *k = config_keys; k->section; k++) {
			char line[600];

			if (strcmp(k->section, s->name))
				continue;
			snprintf(line, sizeof(line), "%s%s%s%s", k->doc,
				 k->flags & CK_REPEAT ? " (may repeat)" : "",
				 k->def_doc ? "; default " : "", k->def_doc ? k->def_doc : "");
			comment(f, line);
			fprintf(f, "#%s = %s\n", k->key,
				k->def_doc || !k->def ? k->example : k->def);
		}
	}
	return 0;
}

/* --- docs/OPERATING.md's table ---------------------------------------------- */

static int config_md(FILE *f)
{
	fputs("| section | key | default | meaning |\n|---|---|---|---|\n", f);
	for (const struct config_section *s = config_sections; s->name; s++) {
		bool first = true;

		for (const struct config_key *k = config_keys; k->section; k++) {
			if (strcmp(k->section, s->name))
				continue;
			fprintf(f, "| %s%s%s | `%s` | ", first ? "`[" : "", first ? s->name : "",
				first ? "]`" : "", k->key);
			if (k->def)
				fprintf(f, "`%s`", k->def);
			else if (k->def_doc)
				fprintf(f, "`%s`", k->def_doc);
			fprintf(f, " | %s%s |\n", k->doc, k->flags & CK_REPEAT ? "; may repeat" : "");
			first = false;
		}
	}
	return 0;
}

/* --- bash completion ------------------------------------------------------ */

/* How an option's value completes: file names, directory names, words. */
static void arg_completion(FILE *f, const char *cmd, const struct opt_doc *o)
{
	const char *a = o->arg;
	char what[128];

	if (!a)
		return;
	if (strchr(a, '|') && !strchr(a, '.') && !strchr(a, ' '))
		snprintf(what, sizeof(what), "\":%s\"", a);
	else if (!strcmp(a, "DIR"))
		snprintf(what, sizeof(what), "dir");
	else if (strstr(a, "FILE") || strstr(a, ".json"))
		snprintf(what, sizeof(what), "file");
	else
		snprintf(what, sizeof(what), "none");
	fprintf(f, "\t[\"%s --%s\"]=%s\n", cmd, o->name, what);
	if (o->flags & OPT_SHORT)
		fprintf(f, "\t[\"%s -%c\"]=%s\n", cmd, o->val, what);
}

static void options_words(FILE *f, const struct opt_doc *o)
{
	for (; o && o->name; o++) {
		fprintf(f, " --%s", o->name);
		if (o->flags & OPT_SHORT)
			fprintf(f, " -%c", o->val);
	}
}

static void completion_entry(FILE *f, const char *cmd, const struct cmd_doc *d, FILE *args)
{
	fprintf(f, "\t[\"%s\"]=\"", cmd);
	options_words(f, d->opts);
	options_words(f, cli_common_opts);
	fputs("\"\n", f);
	for (const struct opt_doc *o = d->opts; o && o->name; o++)
		arg_completion(args, cmd, o);
	for (const struct opt_doc *o = cli_common_opts; o->name; o++)
		arg_completion(args, cmd, o);
	/* A first operand that is a file. */
	if (!strncmp(d->synopsis, "FILE", 4) || !strncmp(d->synopsis, "[CONTRACT.json]", 15))
		fprintf(args, "\t[\"%s \"]=file\n", cmd);
}

static int bash(FILE *f)
{
	char *args_text = NULL;
	size_t args_len = 0;
	FILE *args = open_memstream(&args_text, &args_len);

	if (!args)
		return -1;
	fputs("# bash completion for tally, made from its command table (man/gen.c).\n"
	      "# shellcheck shell=bash\n\n"
	      "declare -gA _tally_subcommands=(\n", f);
	for (const struct cli_command *c = cli_commands; c->name; c++) {
		if (!c->subs)
			continue;
		fprintf(f, "\t[\"%s\"]=\"", c->name);
		for (const struct cli_command *s = c->subs; s->name; s++)
			fprintf(f, "%s%s", s == c->subs ? "" : " ", s->name);
		fputs("\"\n", f);
	}
	fputs(")\n\n# Each command's options.\ndeclare -gA _tally_options=(\n", f);
	for (const struct cli_command *c = cli_commands; c->name; c++) {
		char cmd[64];

		if (!c->subs) {
			completion_entry(f, c->name, c->doc, args);
			continue;
		}
		for (const struct cli_command *s = c->subs; s->name; s++) {
			snprintf(cmd, sizeof(cmd), "%s %s", c->name, s->name);
			completion_entry(f, cmd, s->doc, args);
		}
	}
	fclose(args);
	fputs(")\n\n# What follows an option (\"COMMAND --option\") or the command itself\n"
	      "# (\"COMMAND \"): file, dir, none, or :word|word.\n"
	      "declare -gA _tally_values=(\n", f);
	fputs(args_text, f);
	free(args_text);
	fputs(")\n\n"
	      "_tally()\n"
	      "{\n"
	      "\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
	      "\tlocal cmd=${COMP_WORDS[1]:-} i=2 what\n"
	      "\tCOMPREPLY=()\n"
	      "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n"
	      "\t\tCOMPREPLY=($(compgen -W \"", f);
	for (const struct cli_command *c = cli_commands; c->name; c++)
		fprintf(f, "%s ", c->name);
	fputs("help --help --version\" -- \"$cur\"))\n"
	      "\t\treturn\n"
	      "\tfi\n"
	      "\tif [ \"$cmd\" = help ]; then\n"
	      "\t\t[ \"$COMP_CWORD\" -eq 2 ] &&\n"
	      "\t\t\tCOMPREPLY=($(compgen -W \"${!_tally_subcommands[*]} ${!_tally_options[*]}\""
	      " -- \"$cur\"))\n"
	      "\t\t[ \"$COMP_CWORD\" -eq 3 ] &&\n"
	      "\t\t\tCOMPREPLY=($(compgen -W \"${_tally_subcommands[${COMP_WORDS[2]}]:-}\" --"
	      " \"$cur\"))\n"
	      "\t\treturn\n"
	      "\tfi\n"
	      "\tif [ -n \"${_tally_subcommands[$cmd]:-}\" ]; then\n"
	      "\t\tif [ \"$COMP_CWORD\" -eq 2 ]; then\n"
	      "\t\t\tCOMPREPLY=($(compgen -W \"${_tally_subcommands[$cmd]}\" -- \"$cur\"))\n"
	      "\t\t\treturn\n"
	      "\t\tfi\n"
	      "\t\tcmd=\"$cmd ${COMP_WORDS[2]}\"\n"
	      "\t\ti=3\n"
	      "\tfi\n"
	      "\t[ -n \"${_tally_options[$cmd]:-}\" ] || return\n"
	      "\t# the value of the option before, if it takes one\n"
	      "\tif [ \"$COMP_CWORD\" -gt \"$i\" ]; then\n"
	      "\t\twhat=${_tally_values[\"$cmd $prev\"]:-}\n"
	      "\t\tcase $what in\n"
	      "\t\tfile) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
	      "\t\tdir) COMPREPLY=($(compgen -d -- \"$cur\")) ;;\n"
	      "\t\t:*) what=${what#:}; COMPREPLY=($(compgen -W \"${what//|/ }\" -- \"$cur\")) ;;\n"
	      "\t\tesac\n"
	      "\t\t[ -z \"$what\" ] || return\n"
	      "\tfi\n"
	      "\tif [[ $cur == -* ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -W \"${_tally_options[$cmd]}\" -- \"$cur\"))\n"
	      "\telif [ \"${_tally_values[\"$cmd \"]:-}\" = file ]; then\n"
	      "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
	      "\tfi\n"
	      "}\n"
	      "complete -F _tally tally\n", f);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(FILE *f);
	} outputs[] = {
		{ "tally.1", tally_1 },
		{ "tallyd.8", tallyd_8 },
		{ "tallyd.conf.5", tallyd_conf_5 },
		{ "tallyd.conf", tallyd_conf },
		{ "tally.bash", bash },
		{ "config-md", config_md },
	};

	if (argc != 2) {
		fprintf(stderr, "usage: gen tally.1|tallyd.8|tallyd.conf.5|tallyd.conf|tally.bash|"
			"config-md > FILE\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++)
		if (!strcmp(argv[1], outputs[i].name)) {
			if (outputs[i].fn(stdout) || fflush(stdout) || ferror(stdout))
				return 1;
			return 0;
		}
	fprintf(stderr, "gen: no output named '%s'\n", argv[1]);
	return 2;
}
