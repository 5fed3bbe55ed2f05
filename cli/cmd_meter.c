/* tally node meter-detach: detach and remove a node's pinned CPU meter.
 *
 * A node's meter stays pinned and attached after tallyd stops, by design:
 * threads that end while no daemon runs keep their final figures. This is
 * how an operator takes it away for good (uninstall, a benchmark that
 * needs a quiet kernel, a meter of an older version): every pin a meter
 * makes in the directory is unlinked, which detaches its programs, then the
 * directory. A running tallyd holds the directory, and is named instead. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "cli/tally.h"
#include "lib/errors.h"
#include "lib/meter_pins.h"

#define DEFAULT_CONFIG "/etc/tally/tallyd.conf"

struct pin_conf {
	char pin_dir[PATH_MAX];
};

/* [metering] pin_dir of a tallyd.conf; the rest is tallyd's business. */
static int on_entry(void *user, const char *section, const char *key, const char *value)
{
	struct pin_conf *c = user;

	if (!strcmp(section, "metering") && !strcmp(key, "pin_dir"))
		snprintf(c->pin_dir, sizeof(c->pin_dir), "%s", value);
	return 1;
}

static int pin_dir_from_config(const char *path, char out[PATH_MAX])
{
	struct pin_conf c;
	int rc;

	snprintf(c.pin_dir, sizeof(c.pin_dir), "%s", METER_PIN_DIR_DEFAULT);
	rc = ini_parse(path, on_entry, &c);
	if (rc < 0) {
		err("cannot read %s: %s", path, rc == -1 ? strerror(errno) : "out of memory");
		return EXIT_USAGE;
	}
	if (rc > 0) {
		err("%s: line %d is not INI", path, rc);
		return EXIT_USAGE;
	}
	snprintf(out, PATH_MAX, "%s", c.pin_dir);
	return EXIT_OK;
}

static json_t *names_json(const char (*names)[64], size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(names[i]));
	return a;
}

enum { O_CONFIG = 256, O_PIN_DIR };

static const struct opt_doc detach_opts[] = {
	{ "config", O_CONFIG, "FILE", "the node's tallyd.conf: its [metering] pin_dir\n"
	  "(default " DEFAULT_CONFIG ", if it exists)", 0 },
	{ "pin-dir", O_PIN_DIR, "DIR", "the pin directory itself (default " METER_PIN_DIR_DEFAULT ")",
	  0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_node_meter_detach = {
	.name = "node meter-detach",
	.synopsis = "[--config FILE | --pin-dir DIR] [--json]",
	.summary = "detach and remove a node's pinned CPU meter",
	.description =
		"Detach a node's CPU meter and remove what it pinned: its eBPF programs\n"
		"stop, its maps go, then the directory. The meter stays attached when\n"
		"tallyd stops (it keeps the final figures of VM threads that end\n"
		"meanwhile); this takes it away for good. Counts a node had not yet put\n"
		"in a usage record are lost. Refused while a running tallyd holds the\n"
		"directory (stop it first). Nothing pinned is not an error.",
	.opts = detach_opts,
	.epilog =
		"--json prints {\"pin_dir\", \"found\", \"removed\": [...], \"kept\": [...],\n"
		"\"dir_removed\"}.\n"
		"Exit: 0 detached (or nothing there), 1 refused (in use, or not a meter's\n"
		"directory), 2 usage or I/O error.",
};

int cmd_node_meter_detach(int argc, char **argv)
{
	struct optable ot;
	const char *config = NULL, *pin_dir = NULL;
	char dir[PATH_MAX], why[WHY_MAX] = "";
	struct meter_pins_removal r;
	struct common co;
	int c, rc;

	cmd_optable(&ot, &doc_node_meter_detach, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (common_opt(&co, c, optarg))
			continue;
		if (c == O_CONFIG)
			config = optarg;
		else if (c == O_PIN_DIR)
			pin_dir = optarg;
		else
			return bad_option("node meter-detach", c, argv);
	}
	if (co.help)
		return cmd_help(&doc_node_meter_detach);
	if (optind != argc)
		return usage_error("node meter-detach", "unexpected argument '%s'", argv[optind]);
	if (config && pin_dir)
		return usage_error("node meter-detach", "give --config or --pin-dir, not both");
	if (pin_dir) {
		snprintf(dir, sizeof(dir), "%s", pin_dir);
	} else if (config || access(DEFAULT_CONFIG, R_OK) == 0) {
		rc = pin_dir_from_config(config ? config : DEFAULT_CONFIG, dir);
		if (rc)
			return rc;
	} else {
		snprintf(dir, sizeof(dir), "%s", METER_PIN_DIR_DEFAULT);
	}
	if (dir[0] != '/')
		return usage_error("node meter-detach", "the pin directory '%s' is not an "
				   "absolute path", dir);
	rc = meter_pins_remove(dir, &r, why);
	if (rc) {
		err("%s", why);
		return rc == TALLY_E_IO ? EXIT_USAGE : EXIT_REFUSED;
	}
	if (co.json)
		return print_json(json_pack("{s:s, s:b, s:o, s:o, s:b}", "pin_dir", dir,
					    "found", r.found, "removed",
					    names_json(r.removed, r.nremoved),
					    "kept", names_json(r.kept, r.nkept),
					    "dir_removed", r.dir_removed));
	if (!r.found) {
		printf("no meter pinned at %s: nothing to detach\n", dir);
		return EXIT_OK;
	}
	printf("detached the meter pinned at %s: removed %zu pin%s", dir, r.nremoved,
	       r.nremoved == 1 ? "" : "s");
	for (size_t i = 0; i < r.nremoved; i++)
		printf("%s%s", i ? ", " : " (", r.removed[i]);
	printf("%s\n", r.nremoved ? ")" : "");
	if (r.nkept) {
		printf("kept what is not a meter's, so %s stays:", dir);
		for (size_t i = 0; i < r.nkept; i++)
			printf(" %s", r.kept[i]);
		printf("\n");
	}
	return EXIT_OK;
}
